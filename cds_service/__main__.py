"""``python -m cds_service`` = the ``trialcds`` console script."""

import sys

from cds_service.cli import main

sys.exit(main())
