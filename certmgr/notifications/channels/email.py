"""Email: Django's mail through the configured SMTP server, to the owners and extra addresses."""

from __future__ import annotations

import logging
import re
import smtplib
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import EmailMultiAlternatives
from django.db.models import Q

from ...core.notices import Message
from ..models import NotificationChannel
from .base import Channel, ChannelError

log = logging.getLogger(__name__)


class EmailChannel(Channel):
    """Django's mail through the configured SMTP server (settings EMAIL_*): text plus HTML."""

    kind = NotificationChannel.Kind.EMAIL

    def send(self, message: Message, recipient: str = "") -> None:
        if not recipient:
            raise ChannelError("No email address to send the notice to.", retryable=False)
        mail = EmailMultiAlternatives(
            message.subject, message.text, settings.DEFAULT_FROM_EMAIL, [recipient], headers=_headers(message)
        )
        if message.html:
            mail.attach_alternative(message.html, "text/html")
        server = f"{settings.EMAIL_HOST}:{settings.EMAIL_PORT}"
        try:
            mail.send(fail_silently=False)
        except smtplib.SMTPRecipientsRefused as exc:
            code, reply = next(iter(exc.recipients.values()), (550, b""))
            raise ChannelError(
                f"The mail server {server} refused {recipient}: {code} {_reply(reply)}", retryable=code < 500
            ) from None
        except smtplib.SMTPResponseException as exc:  # sender or data refused, login failed
            raise ChannelError(
                f"The mail server {server} answered {exc.smtp_code} {_reply(exc.smtp_error)}",
                retryable=exc.smtp_code < 500,
            ) from None
        except OSError as exc:  # refused, timed out, disconnected, TLS failed (SMTPException included)
            raise ChannelError(
                f"Could not deliver mail through {server}: {exc.__class__.__name__}.", retryable=True
            ) from None
        except ValueError as exc:  # a header with a line break
            raise ChannelError(f"The mail could not be built: {exc}", retryable=False) from None
        log.debug("Mailed a %s notice through %s", message.event, server)


def _headers(message: Message) -> dict[str, str]:
    """The notice's id, and a Message-ID made of it: a mail delivered twice (a sender died after the
    server took it) is the same mail to every client that deduplicates on Message-ID."""
    if not message.notice_id:
        return {}
    host = urlsplit(settings.CERTMGR_PORTAL_URL).hostname or "certmgr.invalid"
    return {"X-Certmgr-Notice-Id": message.notice_id, "Message-ID": f"<notice-{message.notice_id}@{host}>"}


def _reply(reply: bytes | str) -> str:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
    return " ".join(text.split())[:200]


def recipients(row: NotificationChannel) -> list[str]:
    """Email: the owners' addresses (owner groups' members too) unless excluded, plus extra ones.

    Other kinds have one recipient, the channel itself: [""].
    """
    if row.kind != NotificationChannel.Kind.EMAIL:
        return [""]
    options = row.options or {}
    found = []
    if options.get("include_owners", True):
        owners = get_user_model().objects.filter(
            Q(owned_applications=row.application_id) | Q(groups__owned_applications=row.application_id),
            is_active=True,
        )
        found += owners.exclude(email="").order_by("email").values_list("email", flat=True).distinct()
    extra = options.get("addresses") or []
    found += re.split(r"[,;\s]+", extra) if isinstance(extra, str) else extra
    unique = {}
    for address in (str(a).strip() for a in found):
        if address:
            unique.setdefault(address.lower(), address)
    return list(unique.values())
