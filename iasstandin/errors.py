"""The OAuth2 error answers: the token endpoint's (RFC 6749 §5.2), shared by both grants, and a
resource's refusal of a Bearer token (RFC 6750 §3), shared by the backend and userinfo."""

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


def invalid_token(reason: str) -> Response:
    """RFC 6750 §3.1: 401 with the reason in the body and the WWW-Authenticate challenge."""
    return Response.json(
        401,
        {"error": "invalid_token", "error_description": reason},
        {"WWW-Authenticate": f'Bearer error="invalid_token", error_description="{reason}"'},
    )
