"""Django's debug page (DEBUG on: ``./dev run``) and error reports without secrets.

Django's own filter hides settings and POST fields by name, and only with DEBUG off. A crash inside the parser or the key
handling has more in its frames: the pasted private key, PKCS#12 bytes, a password, a token. This
filter also hides every local whose name says it is a secret, and every local holding PEM or raw
bytes (keys and PKCS#12 files are bytes; nothing worth debugging from a page is).
"""

from __future__ import annotations

import re

from django.views.debug import SafeExceptionReporterFilter

SECRET_NAMES = re.compile(r"pass|secret|token|key|pem|der|p12|pkcs|pfx|credential|signature|cookie", re.I)
SECRET_TEXT = re.compile(r"-----BEGIN|PRIVATE KEY|MII[A-Za-z0-9+/]{20}")
REPR_LIMIT = 4096  # how much of an object's repr is searched for PEM


class SecretHidingFilter(SafeExceptionReporterFilter):
    def is_active(self, request) -> bool:
        # Django's filter stands down when DEBUG is on ("your site is not safe anyway"); the
        # development server shows pasted keys and passwords as well as production would log them.
        return True

    def get_traceback_frame_variables(self, request, tb_frame):
        return [
            (name, self.cleansed_substitute if _secret(name, value) else value)
            for name, value in super().get_traceback_frame_variables(request, tb_frame)
        ]


def _secret(name: str, value) -> bool:
    if value is None or isinstance(value, bool | int | float):
        return False
    if SECRET_NAMES.search(name) or isinstance(value, bytes | bytearray | memoryview):
        return True
    try:
        text = value if isinstance(value, str) else repr(value)[:REPR_LIMIT]
    except Exception:  # noqa: BLE001 - a repr that fails is hidden, not a second crash
        return True
    return bool(SECRET_TEXT.search(text))
