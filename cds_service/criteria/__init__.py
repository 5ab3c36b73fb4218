"""Criteria: facts → statuses (pure functions), and the verdict. Never sees HTTP or FHIR servers."""

from cds_service.criteria.engine import evaluate_facts, evaluate_resources, verdict
from cds_service.criteria.models import Evaluation, TrialDefinition

__all__ = ["Evaluation", "TrialDefinition", "evaluate_facts", "evaluate_resources", "verdict"]
