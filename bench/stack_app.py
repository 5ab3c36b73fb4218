"""The Flask app for plain gunicorn workers (bench/stacks.py): built as ``trialcds serve`` builds it in
each worker — settings from the environment (TRIALCDS_DEV, TRIALCDS_DATABASE_URL), JSON log lines on
stderr, then ``gc.collect(); gc.freeze()`` and the collector threshold."""

from __future__ import annotations

import gc

from cds_service.app import create_app, load_config
from cds_service.commands.serve import GC_THRESHOLD
from cds_service.security.request_log import configure_logging

configure_logging()
app = create_app(load_config())
gc.collect()
gc.freeze()
gc.set_threshold(*GC_THRESHOLD)
