"""The SAP Alert Notification service: resource events with an OAuth2 client-credentials token."""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
from urllib.parse import quote_plus, urlencode

from ...core.notices import Message
from ..models import NotificationChannel
from .base import ChannelError, HttpChannel, check_status, host_of, json_body, notice_header

EVENTS_PATH = "/cf/producer/v1/resource-events"

# Access tokens by (token URL, client id, SHA-256 of the secret): (token, usable until epoch seconds).
_tokens: dict[tuple[str, str, str], tuple[str, float]] = {}
_tokens_lock = threading.Lock()


class AlertNotificationChannel(HttpChannel):
    """Resource events with an OAuth2 client-credentials token, reused until shortly before it expires."""

    kind = NotificationChannel.Kind.ALERT_NOTIFICATION
    secret_fields = ("client_secret",)
    option_fields = ("url", "token_url", "client_id")

    def __init__(self, url: str, token_url: str, client_id: str, client_secret: str):
        self.url = url.rstrip("/")
        self.token_url = token_url
        self.client_id = client_id
        self.client_secret = client_secret
        self._key = (token_url, client_id, hashlib.sha256(client_secret.encode("utf-8")).hexdigest())

    def send(self, message: Message, recipient: str = "") -> None:
        body = json_body(ans_event(message, int(time.time())))
        token, fresh = self._token()
        headers = {**ans_event_headers(token), **notice_header(message)}
        response = self._post(self.url + EVENTS_PATH, body, headers, check=False)
        if response.status == 401 and not fresh:  # revoked or expired early: one more try, new token
            with _tokens_lock:
                _tokens.pop(self._key, None)
            token, _ = self._token()
            headers = {**ans_event_headers(token), **notice_header(message)}
            response = self._post(self.url + EVENTS_PATH, body, headers, check=False)
        check_status(response, host_of(self.url))

    def _token(self) -> tuple[str, bool]:
        """The access token, and whether it was just fetched."""
        with _tokens_lock:
            token, until = _tokens.get(self._key, ("", 0.0))
        if token and time.time() < until:
            return token, False
        body, headers = ans_token_request(self.client_id, self.client_secret)
        response = self._post(self.token_url, body, headers, check=False)
        check_status(response, host_of(self.token_url), refused="the token request")
        try:
            answer = json.loads(response.body)
            token, lifetime = str(answer["access_token"]), float(answer.get("expires_in", 300))
        except (ValueError, KeyError, TypeError):
            raise ChannelError(
                f"{host_of(self.token_url)} answered the token request without an access token: check the token URL.",
                retryable=False,
            ) from None
        with _tokens_lock:
            _tokens[self._key] = (token, time.time() + lifetime - min(60.0, lifetime / 2))
        return token, True


ANS_EVENT_TYPES = {
    "threshold": "IASCertificateExpiring",
    "expired": "IASCertificateExpired",
    "resolved": "IASCertificateRenewed",
    "health_failed": "IASHealthCheckFailed",
    "health_recovered": "IASHealthCheckRecovered",
    "digest": "IASCertificateDigest",
    "test": "IASCertificatePortalTest",
}
ANS_SEVERITIES = {"info": "INFO", "warning": "WARNING", "error": "ERROR", "critical": "FATAL"}
ANS_NOTIFICATIONS = {"resolved", "health_recovered", "digest", "test"}  # good news, not alerts


def ans_event(message: Message, timestamp: int) -> dict:
    """A resource event for the service's producer API."""
    resource_tags = {"tenant": message.tenant, "fingerprint": message.fingerprint}
    tags = {
        # Expiring, expired and renewed events of a certificate belong together, as do failed and
        # recovered health checks of an application.
        "ans:correlationId": f"{message.application_slug}:{message.fingerprint or 'health'}",
        "ans:detailsLink": message.link,
        "event": message.event,
    }
    if message.threshold is not None:
        tags["threshold"] = str(message.threshold)
    if message.notice_id:
        tags["certmgr:noticeId"] = message.notice_id
    return {
        "eventType": ANS_EVENT_TYPES.get(message.event, "IASCertificateNotice"),
        "eventTimestamp": timestamp,
        "severity": ANS_SEVERITIES.get(message.severity, "WARNING"),
        "category": "NOTIFICATION" if message.event in ANS_NOTIFICATIONS else "ALERT",
        "subject": message.subject,
        "body": message.text,
        "resource": {
            "resourceName": message.application_slug,
            "resourceType": "ias-application",
            "tags": {k: v for k, v in resource_tags.items() if v},
        },
        "tags": {k: v for k, v in tags.items() if v},
    }


def ans_event_headers(token: str) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "Accept": "application/json",
        "Authorization": f"Bearer {token}",
    }


def ans_token_request(client_id: str, client_secret: str) -> tuple[bytes, dict[str, str]]:
    """The body and headers of an OAuth2 client-credentials token request."""
    # RFC 6749 §2.3.1: client id and secret are form-encoded before Basic encoding.
    pair = f"{quote_plus(client_id)}:{quote_plus(client_secret)}".encode()
    headers = {
        "Authorization": "Basic " + base64.b64encode(pair).decode("ascii"),
        "Content-Type": "application/x-www-form-urlencoded",
        "Accept": "application/json",
    }
    body = urlencode({"grant_type": "client_credentials"}).encode("ascii")
    return body, headers
