"""One JSON object per log line, for Cloud Foundry's log stream (and whatever reads it later)."""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime


class JsonFormatter(logging.Formatter):
    """time, level, logger, message and, when there is one, the exception with its traceback."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


_FEED_TOKEN = re.compile(r"(/feeds/)[^/\s?]+")
_LOGIN_CALLBACK_QUERY = re.compile(r"(/oidc/callback/\?)[^\s\"]+")
# An API token (certmgr/api/models.py) belongs in the Authorization header, which no log shows;
# one pasted into a URL by mistake keeps only its recognisable prefix.
_API_TOKEN = re.compile(r"(cmp_[0-9a-f]{8})_[A-Za-z0-9_-]+")


def mask_url_secrets(text: str) -> str:
    """Secrets that travel in URLs, masked: a calendar feed's token (/feeds/<token>/… becomes
    /feeds/…/…), the login callback's one-time code and state (its whole query), and an API
    token's secret part (cmp_1a2b3c4d_… keeps its prefix)."""
    text = _API_TOKEN.sub("\\1_…", text)
    return _LOGIN_CALLBACK_QUERY.sub("\\1…", _FEED_TOKEN.sub("\\1…", text))


class AccessLogRedactor(logging.Filter):
    """Keeps secrets out of gunicorn's access log: no query strings (the login's one-time code and
    state), the calendar feeds' tokens, which are in their path, and any API token masked."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, dict) and "U" in record.args:
            atoms = dict(record.args)
            atoms["U"] = mask_url_secrets(str(atoms["U"]))
            atoms["q"] = ""
            # Should the format ever name them: the request line without its query, and no
            # Authorization header (API tokens, the metrics token).
            if "r" in atoms:
                atoms["r"] = mask_url_secrets(re.sub(r"\?\S*", "", str(atoms["r"]), count=1))
            atoms.update({name: "-" for name in atoms if name.lower() == "{authorization}i"})
            record.args = atoms
        return True


class UrlSecretRedactor(logging.Filter):
    """The same for the portal's own logs (Django's "Not Found: /feeds/<token>/apps/x.ics") and the
    development server's request lines."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(mask_url_secrets(arg) if isinstance(arg, str) else arg for arg in record.args)
        if isinstance(record.msg, str):
            record.msg = mask_url_secrets(record.msg)
        return True
