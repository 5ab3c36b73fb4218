"""The peer for ``make bench``: a HealthChain CDS Hooks patient-view service that answers one
fixed card without reading the request's data.

Written with HealthChain's own CDS Hooks service API (``HealthChainAPI`` + ``CDSHooksService``,
as in its documentation) and served the way HealthChain serves apps, with uvicorn::

    bench/.venv/bin/python -m uvicorn peer_app:app --app-dir bench --workers 2 \
        --host 127.0.0.1 --port 8302

It runs only in ``bench/.venv`` (HealthChain and its dependencies never enter the project's venv).
The request still goes through HealthChain's whole path: FastAPI body parsing, validation into
its ``CDSRequest`` model (prefetch included, as ``Dict[str, Any]``), the hook dispatch and the
``CDSResponse`` serialisation.
"""

from __future__ import annotations

import logging

from healthchain.gateway import CDSHooksService, HealthChainAPI
from healthchain.models.requests.cdsrequest import CDSRequest
from healthchain.models.responses.cdsresponse import CDSResponse

logging.getLogger("healthchain").setLevel(logging.WARNING)

SERVICE_ID = "nct05271110"

app = HealthChainAPI(title="trialcds bench peer")
cds = CDSHooksService()

FIXED_CARD = {
    "summary": "Trial screening: NCT05271110 (ScanPan)",
    "indicator": "info",
    "detail": "A fixed card: this peer does not read the patient's data.",
    "source": {"label": "HealthChain bench peer"},
}


@cds.hook("patient-view", id=SERVICE_ID, title="Trial screening (bench peer)")
def patient_view(request: CDSRequest) -> CDSResponse:
    return CDSResponse(cards=[FIXED_CARD])


app.register_service(cds)
