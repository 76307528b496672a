"""A pipeline's view of the automation API in tests: Django's test client with a bearer token."""

from __future__ import annotations

import json

from certmgr.api.models import ApiToken


def make_token(user, *, write: bool = False, apps=(), expires_days: int = 90, name: str = "ci") -> str:
    """A token for ``user`` (the string a pipeline holds)."""
    return ApiToken.issue(user, name=name, applications=list(apps), write=write, expires_days=expires_days)[1]


class Api:
    """``api.get("applications/")`` → /api/v1/applications/ with ``Authorization: Bearer <token>``."""

    def __init__(self, client, token: str | None):
        self.client = client
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}

    def url(self, path: str) -> str:
        return path if path.startswith("/") else "/api/v1/" + path

    def get(self, path: str, params: dict | None = None, **headers):
        return self.client.get(self.url(path), params or {}, headers={**self.headers, **headers})

    def post(self, path: str, body=None, **headers):
        return self._send("post", path, body, headers)

    def patch(self, path: str, body=None, **headers):
        return self._send("patch", path, body, headers)

    def delete(self, path: str, **headers):
        return self._send("delete", path, None, headers)

    def _send(self, method: str, path: str, body, headers: dict):
        data = "" if body is None else json.dumps(body)
        return getattr(self.client, method)(
            self.url(path), data, content_type="application/json", headers={**self.headers, **headers}
        )


def problem(response) -> dict:
    """The problem details of an error answer, checked to be one."""
    assert response["Content-Type"] == "application/problem+json", response.content[:300]
    body = response.json()
    assert body["status"] == response.status_code
    assert body["type"] == "urn:ias-cert-portal:problem:" + body["code"]
    assert body["title"] and body["detail"]
    return body
