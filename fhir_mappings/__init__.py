"""FHIR R4 resources (plain JSON) → the facts trial criteria read. Pure: no network, no clock."""

from fhir_mappings.extract import extract_facts
from fhir_mappings.facts import PatientFacts
from fhir_mappings.record import PatientRecord, resources_of_bundle

__all__ = ["PatientFacts", "PatientRecord", "extract_facts", "resources_of_bundle"]
