"""Running the app with uvicorn: in the foreground (`emergelab serve`) or on a background thread (tests).

`serve` binds its socket first (`bind`), so a port already in use is one clear error before the model is
loaded or "serving on" is printed, and uvicorn then serves on that very socket.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn
from fastapi import FastAPI

from emergelab.errors import UserError


def bind(host: str, port: int) -> socket.socket:
    """A listening-ready socket on host:port, or a UserError naming the problem (port in use, bad host)."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    except (socket.gaierror, UnicodeError) as e:
        raise UserError(f"--host: {host!r} is not an address of this machine ({e}) — try 127.0.0.1") from None
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does: restart right after a stop
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        if e.errno in (98, 48, 10048):  # EADDRINUSE on Linux, macOS, Windows
            raise UserError(f"--port: {host}:{port} is already in use — stop the other server or pick another "
                            "port (--port 0 picks a free one)") from None
        raise UserError(f"--host/--port: cannot listen on {host}:{port} ({e.strerror}) — try 127.0.0.1 and a "
                        "port above 1023") from None
    return sock


def run(app: FastAPI, sock: socket.socket, log_level: str = "info") -> None:
    """Serve `app` on the bound `sock` until interrupted."""
    config = uvicorn.Config(app, log_level=log_level, timeout_graceful_shutdown=5)
    uvicorn.Server(config).run(sockets=[sock])


@contextmanager
def serve_in_thread(app: FastAPI, host: str = "127.0.0.1", port: int = 0,
                    timeout: float = 30.0) -> Iterator[str]:
    """Serve `app` on a background thread; yields its base URL (port 0 = a free port)."""
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning",
                                           timeout_graceful_shutdown=2))
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the server did not start")
        time.sleep(0.02)
    bound = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://{host}:{bound}"
    finally:
        server.should_exit = True
        thread.join(timeout)
