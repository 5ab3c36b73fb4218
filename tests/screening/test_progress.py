"""Progress on stderr: redrawn on a terminal, plain lines otherwise, only phase ends with --quiet."""

from __future__ import annotations

import io

from cds_service.screening import progress as progress_module
from cds_service.screening.progress import Progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def run_phase(stream, quiet=False):
    p = Progress(stream, quiet=quiet)
    phase = p.phase("evaluating", total=1000)
    for _ in range(1000):
        phase.advance()
    phase.message("server: 50% done")
    phase.done()
    return stream.getvalue()


def test_a_terminal_gets_a_redrawn_line_with_rate_and_eta(monkeypatch):
    monkeypatch.setattr(progress_module, "REDRAW_SECONDS", 0.0)
    out = run_phase(Terminal())
    assert "\r\x1b[2K" in out and "ETA" in out and "patients/s" in out
    assert out.endswith("\n") and "evaluating: 1,000 patients" in out.splitlines()[-1]


def test_not_a_terminal_plain_lines_only(monkeypatch):
    monkeypatch.setattr(progress_module, "LOG_EVERY_SECONDS", 0.0)
    out = run_phase(io.StringIO())
    assert "\r" not in out and "\x1b" not in out
    assert len(out.splitlines()) > 1


def test_quiet_writes_only_the_end_of_each_phase(monkeypatch):
    monkeypatch.setattr(progress_module, "LOG_EVERY_SECONDS", 0.0)
    monkeypatch.setattr(progress_module, "REDRAW_SECONDS", 0.0)
    out = run_phase(Terminal(), quiet=True)
    assert "\r" not in out
    assert out.splitlines() == [line for line in out.splitlines() if " in 0:0" in line] and len(out.splitlines()) == 1
