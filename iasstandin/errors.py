"""The OAuth2 error answer of the token endpoint (RFC 6749 §5.2), shared by both grants."""

from __future__ import annotations

from .tlsserver import Response

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


class TokenError(Exception):
    def __init__(self, status: int, error: str, description: str, headers: dict[str, str] | None = None):
        super().__init__(description)
        self.status, self.error, self.description = status, error, description
        self.headers = headers or {}

    def response(self) -> Response:
        body = {"error": self.error, "error_description": self.description}
        return Response.json(self.status, body, {**NO_STORE, **self.headers})
