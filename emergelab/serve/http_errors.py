"""Errors of the HTTP API in OpenAI's shape: `{"error": {"message", "type", "param", "code"}}`.

Every OpenAI client reports this shape readably. The JSON is ASCII-escaped, so a message that quotes
user text (even a lone surrogate such as "\\ud800") can always be encoded.
"""

from __future__ import annotations

import json

from starlette.responses import Response


class ApiError(Exception):
    """Raised by a handler; answered as `status` with the message, the offending field and a code."""

    def __init__(self, status: int, message: str, param: str | None = None, kind: str = "invalid_request_error",
                 code: str | None = None):
        super().__init__(message)
        self.status, self.message, self.param, self.kind, self.code = status, message, param, kind, code


def error_response(status: int, message: str, param: str | None = None, kind: str = "invalid_request_error",
                   code: str | None = None) -> Response:
    body = {"error": {"message": message, "type": kind, "param": param, "code": code}}
    return Response(json.dumps(body, ensure_ascii=True), status_code=status, media_type="application/json")
