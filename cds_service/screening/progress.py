"""Progress on stderr: a live line on a terminal, plain log lines otherwise.

``Progress.phase(name, total, unit)`` returns a ``Phase``: ``advance(n)`` as work is done,
``message(text)`` for a status such as a Bulk Data server's ``X-Progress``, ``done()`` at the end. On a
terminal the line is redrawn at most 10 times a second with the rate (patients/s, MB/s) and an ETA;
with ``--quiet`` or when stderr is not a terminal, a plain line is written when a phase ends (and,
unless quiet, every 10 seconds while it runs). Never patient data: only counts, rates and names of
phases.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

REDRAW_SECONDS = 0.1
LOG_EVERY_SECONDS = 10.0


def _amount(value: float, unit: str) -> str:
    if unit == "bytes":
        return f"{value / 1e6:,.1f} MB"
    return f"{value:,.0f} {unit}"


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}" if seconds >= 3600 else f"{seconds // 60}:{seconds % 60:02d}"


class Phase:
    def __init__(self, progress: Progress, name: str, total: float | None, unit: str) -> None:
        self.progress, self.name, self.total, self.unit = progress, name, total, unit
        self.done_count = 0.0
        self.started = time.monotonic()
        self.last_shown = self.started  # the first line after one interval, not at once
        self.text = ""

    def advance(self, n: float = 1) -> None:
        self.done_count += n
        self._maybe_show()

    def message(self, text: str) -> None:
        self.text = text
        self._maybe_show()

    def done(self) -> None:
        self.progress.finish(self, self.line(final=True))

    def line(self, final: bool = False) -> str:
        elapsed = max(time.monotonic() - self.started, 1e-9)
        rate = self.done_count / elapsed
        rate_text = f"{rate / 1e6:,.1f} MB/s" if self.unit == "bytes" else f"{rate:,.0f} {self.unit}/s"
        parts = [f"{self.name}: {_amount(self.done_count, self.unit)}"]
        if self.total and not final:
            parts[0] += f" of {_amount(self.total, self.unit)} ({100 * self.done_count / self.total:.0f} %)"
        parts.append(rate_text)
        if final:
            parts.append(f"in {_duration(elapsed)}")
        elif self.total and rate > 0:
            parts.append(f"ETA {_duration((self.total - self.done_count) / rate)}")
        if self.text:
            parts.append(self.text)
        return ", ".join(parts)

    def _maybe_show(self) -> None:
        now = time.monotonic()
        every = REDRAW_SECONDS if self.progress.live else LOG_EVERY_SECONDS
        if now - self.last_shown >= every:
            self.last_shown = now
            self.progress.show(self.line())


class Progress:
    def __init__(self, stream: TextIO | None = None, quiet: bool = False) -> None:
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self.live = not quiet and self.stream.isatty()
        self._drawn = False

    def phase(self, name: str, total: float | None = None, unit: str = "patients") -> Phase:
        return Phase(self, name, total, unit)

    def show(self, line: str) -> None:
        if self.live:
            self.stream.write("\r\x1b[2K" + line)
            self._drawn = True
        elif not self.quiet:
            self.stream.write(line + "\n")
        self.stream.flush()

    def finish(self, phase: Phase, line: str) -> None:
        self.log(line)

    def log(self, line: str) -> None:
        """A line that stays (phase ends, warnings), on a terminal too."""
        if self._drawn:
            self.stream.write("\r\x1b[2K")
            self._drawn = False
        self.stream.write(line + "\n")
        self.stream.flush()
