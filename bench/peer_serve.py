"""Serve the bench peer exactly as ``uvicorn peer_app:app --workers N …`` would, with one fix.

uvicorn's multi-worker path binds the listening socket itself and leaves its ``proto`` at 0;
asyncio then never turns on TCP_NODELAY for accepted connections, so on Linux every keep-alive
request after the first waits ~40 ms for a delayed ACK (Kludex/uvicorn#3149, fix proposed in
PR #3155; the single-worker path is not affected). Measuring the peer through that bug would
flatter us, so this launcher applies the upstream one-line fix — the bound socket re-wrapped with
``proto=IPPROTO_TCP`` — and hands every argument to uvicorn's own command line. Set
``BENCH_PEER_NO_NODELAY_FIX=1`` to serve it unpatched.

    bench/.venv/bin/python bench/peer_serve.py peer_app:app --app-dir bench --workers 2 \
        --host 127.0.0.1 --port 8302 --no-access-log
"""

from __future__ import annotations

import os
import socket
import sys

import uvicorn.config
import uvicorn.main

_bind_socket = uvicorn.config.Config.bind_socket


def _bind_tcp_socket(self: uvicorn.config.Config) -> socket.socket:
    sock = _bind_socket(self)
    if sock.family in (socket.AF_INET, socket.AF_INET6) and sock.proto != socket.IPPROTO_TCP:
        fixed = socket.socket(sock.family, sock.type, socket.IPPROTO_TCP, fileno=sock.detach())
        fixed.set_inheritable(True)
        return fixed
    return sock


if os.environ.get("BENCH_PEER_NO_NODELAY_FIX") != "1":
    uvicorn.config.Config.bind_socket = _bind_tcp_socket

if __name__ == "__main__":
    sys.exit(uvicorn.main.main())
