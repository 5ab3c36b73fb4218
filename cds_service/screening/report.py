"""report.html — placeholder, replaced below."""
from __future__ import annotations

import html


def render_report(summary, worklist, trial) -> str:
    return "<!doctype html><title>report</title>" + html.escape(str(summary["counts"]))
