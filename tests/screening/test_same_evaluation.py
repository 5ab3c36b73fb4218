"""One code path: every seed patient gives the same evaluation three ways — ``trialcds screen`` (from
Bulk Data NDJSON and from a Bundles folder), ``trialcds evaluate --bundle`` and the CDS Hooks service."""

from __future__ import annotations

import json

import pytest

from cds_service.app import create_app
from cds_service.cli import main
from cds_service.seeding import patient_id, prefetch_from_bundle

from .helpers import evaluations, resources, screen, write_bundles, write_ndjson

SERVICE_URL = "/cds-services/nct05271110"


@pytest.fixture(scope="module")
def screened_today(seeds_today, today, tmp_path_factory):
    """Both screen inputs over every seed patient, as of today: {input kind: {patient ref: evaluation}}."""
    root = tmp_path_factory.mktemp("same")
    # One file per type keeps each type's resources in the Bundle's order: the evaluation object lists
    # evidence in record order, so only the same order can give the same bytes (see test_inputs.py
    # for several files per type, where the decisions must still agree).
    nd = write_ndjson(root / "ndjson", resources(seeds_today.values()), gzip_types={"Observation"})
    bu = write_bundles(root / "bundles", seeds_today)
    found = {}
    for kind, folder in (("ndjson", nd), ("bundles", bu)):
        out = root / f"out-{kind}"
        assert screen(f"--{kind}", folder, "--out", out, "--as-of", today, "--quiet") == 0
        found[kind] = evaluations(out)
    return found


def evaluate_cli(path, as_of, capsys) -> dict:
    capsys.readouterr()
    assert main(["evaluate", "--bundle", str(path), "--as-of", as_of.isoformat(), "--format", "json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_screen_evaluate_and_hook_agree_on_every_seed_patient(screened_today, seeds_today, today, tmp_path, capsys):
    app = create_app({"TRIALCDS_DATABASE_URL": f"sqlite:///{tmp_path / 'hook.sqlite'}", "TRIALCDS_DEV": True})
    app.config["TESTING"] = True
    client = app.test_client()
    from cds_service.trials import get_trial
    trial = get_trial("nct05271110")
    assert len(seeds_today) >= 20
    for slug, bundle in seeds_today.items():
        ref = f"Patient/{patient_id(bundle)}"
        path = tmp_path / f"{slug}.json"
        path.write_text(json.dumps(bundle), encoding="utf-8")
        by_evaluate = evaluate_cli(path, today, capsys)
        assert screened_today["ndjson"][ref] == by_evaluate, slug
        assert screened_today["bundles"][ref] == by_evaluate, slug

        body = {"hook": "patient-view", "hookInstance": f"h7-{slug}",
                "context": {"userId": "Practitioner/dr-test", "patientId": patient_id(bundle)},
                "prefetch": prefetch_from_bundle(bundle, trial)}
        response = client.post(SERVICE_URL, json=body)
        assert response.status_code == 200, slug
        cards = response.get_json()["cards"]
        if by_evaluate["verdict"] == "not-eligible":
            assert cards == [], slug  # the hook shows nothing for a not-eligible patient
        else:
            assert len(cards) == 1, slug
            assert cards[0]["extension"]["trialcds.eligibility"] == by_evaluate, slug


def test_every_seed_patient_is_screened_once(screened_today, seeds_today):
    refs = {f"Patient/{patient_id(b)}" for b in seeds_today.values()}
    assert set(screened_today["ndjson"]) == refs
    assert set(screened_today["bundles"]) == refs
