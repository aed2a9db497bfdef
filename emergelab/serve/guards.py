"""What every request passes before the app sees it: a Host-header check and a body-size limit.

The body limit counts bytes as they arrive, so a chunked body (no Content-Length) is cut off at the
limit too instead of being read into memory whole. The Host check defends a server bound to loopback
against DNS rebinding: a web page on another site whose name resolves to 127.0.0.1 sends its own name
as Host, which is refused.
"""

from __future__ import annotations

import ipaddress

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from emergelab.serve.http_errors import error_response

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")


def is_loopback(host: str) -> bool:
    """Whether a bind address is reachable from this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def host_name(header: str) -> str:
    """The name part of a Host header: 'a.b:80' -> 'a.b', '[::1]:80' -> '::1'."""
    if header.startswith("["):
        return header[1:header.find("]")] if "]" in header else header
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


class RequestGuard:
    """ASGI middleware: refuse a Host outside `allowed_hosts` (None = any) and bodies over `max_body_bytes`.

    The body is read here (up to the limit) and handed to the app in one piece; after it, the app's
    `receive` is the server's again, so the app still learns when the client disconnects.
    """

    def __init__(self, app: ASGIApp, max_body_bytes: int, allowed_hosts: tuple[str, ...] | None = None):
        self.app, self.max_body_bytes = app, max_body_bytes
        self.allowed_hosts = None if allowed_hosts is None else {h.lower() for h in allowed_hosts}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        if self.allowed_hosts is not None and host_name(headers.get("host", "")).lower() not in self.allowed_hosts:
            return await error_response(400, f"Host header {headers.get('host', '')!r} is not this server — use "
                                        "http://127.0.0.1:PORT or http://localhost:PORT",
                                        code="invalid_host")(scope, receive, send)
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_body_bytes:
            return await self._too_large(int(declared), scope, receive, send)
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # the client left before sending its body
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.max_body_bytes:
                return await self._too_large(None, scope, receive, send)
            if not message.get("more_body", False):
                break
        body: Message | None = {"type": "http.request", "body": b"".join(chunks), "more_body": False}

        async def replay() -> Message:
            nonlocal body
            if body is not None:
                message, body = body, None
                return message
            return await receive()

        await self.app(scope, replay, send)

    async def _too_large(self, size: int | None, scope: Scope, receive: Receive, send: Send) -> None:
        what = f"{size} bytes" if size is not None else f"more than {self.max_body_bytes} bytes"
        await error_response(413, f"request body is {what}; the limit is {self.max_body_bytes} — send less",
                             code="body_too_large")(scope, receive, send)
