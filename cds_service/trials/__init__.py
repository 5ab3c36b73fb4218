"""Trial definitions: one JSON file per trial under ``seeds/trials/`` (``TRIALCDS_TRIALS_DIR`` overrides)."""

from __future__ import annotations

import json
import os
from functools import lru_cache
from pathlib import Path

from cds_service.criteria.engine import check_definition
from cds_service.criteria.models import TrialDefinition

REPO_ROOT = Path(__file__).resolve().parents[2]


def trials_dir() -> Path:
    return Path(os.environ.get("TRIALCDS_TRIALS_DIR", REPO_ROOT / "seeds" / "trials"))


def load_trial_file(path: Path) -> TrialDefinition:
    trial = TrialDefinition.model_validate(json.loads(path.read_text(encoding="utf-8")))
    check_definition(trial)
    return trial


@lru_cache(maxsize=None)
def all_trials() -> dict[str, TrialDefinition]:
    """Every trial, by its service id (the CDS Hooks service path)."""
    trials = [load_trial_file(p) for p in sorted(trials_dir().glob("*.json"))]
    return {t.service.id: t for t in trials}


def get_trial(trial_or_service_id: str = "NCT05271110") -> TrialDefinition:
    for trial in all_trials().values():
        if trial_or_service_id in (trial.id, trial.service.id):
            return trial
    raise KeyError(f"no trial {trial_or_service_id!r} in {trials_dir()}")
