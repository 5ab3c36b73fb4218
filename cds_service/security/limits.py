"""Request-body cap that also holds for chunked bodies.

With a Content-Length, Werkzeug refuses an oversized body up front (413). A chunked body has no
length; behind gunicorn (``wsgi.input_terminated``) Werkzeug reads it only up to
``MAX_CONTENT_LENGTH`` and stops there, so the handler gets a body silently cut at the cap and
answers 400 for the broken JSON. Here the same bounded read also detects the byte past the cap
and turns it into the 413 the client should see. Memory stays bounded either way.
"""

from __future__ import annotations

import io
from typing import IO

from flask import Request
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.utils import cached_property

CHUNK = 64 * 1024


class CappedStream(io.RawIOBase):
    """Reads at most ``cap + 1`` bytes of ``raw``; reaching byte ``cap + 1`` raises 413."""

    def __init__(self, raw: IO[bytes], cap: int) -> None:
        self._raw = raw
        self._cap = cap
        self._pos = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        room = self._cap + 1 - self._pos
        if size is None or size < 0 or size > room:
            size = room
        if size <= 0:
            return b""
        data = self._raw.read(size)
        self._pos += len(data)
        if self._pos > self._cap:
            raise RequestEntityTooLarge()
        return data

    def readall(self) -> bytes:
        out = bytearray()
        while True:
            data = self.read(CHUNK)
            if not data:
                return bytes(out)
            out.extend(data)

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


class CappedRequest(Request):
    @cached_property
    def stream(self) -> IO[bytes]:  # type: ignore[override]
        cap = self.max_content_length
        if cap is not None and self.content_length is None and "wsgi.input_terminated" in self.environ:
            return CappedStream(self.environ["wsgi.input"], cap)  # type: ignore[return-value]
        return super().stream
