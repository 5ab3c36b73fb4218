"""Who may call the service, which FHIR servers it may call, and what its logs may say.

* ``config``      — TRIALCDS_* security settings (clients file, public URL, allowlist, limits)
* ``auth``        — CDS client JWT verification (CDS Hooks 2.0 "Trusting CDS Clients")
* ``jwks``        — client public keys: static or fetched from ``jwks_url``, rotated, rate-limited
* ``replay``      — seen-``jti`` table shared by every worker
* ``urls``        — strict URL parsing for allow-list comparisons
* ``fhir_policy`` — the ``fhirServer`` allowlist (SSRF guard) and next-link containment
* ``limits``      — the request-body cap, also for chunked bodies
* ``request_log`` — one JSON line per hook call, without tokens or patient data
* ``install``     — puts all of it into the Flask app
"""

from cds_service.security.auth import AuthenticationError, Authenticator
from cds_service.security.config import ConfigError, SecurityConfig, load_security_config, production_problems
from cds_service.security.fhir_policy import FhirServerForbidden, FhirServerPolicy, is_within_base

__all__ = ["AuthenticationError", "Authenticator", "ConfigError", "FhirServerForbidden", "FhirServerPolicy",
           "SecurityConfig", "is_within_base", "load_security_config", "production_problems"]
