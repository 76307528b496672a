"""Form fields that refuse hostile input with a message instead of passing it to the database.

Django's model choice fields look a submitted id up as given: a 100-digit number overflows SQLite's
INTEGER (a 500, not a form error). These check the ids first, and bound how many may be chosen.
"""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError

MAX_ID = 2**63 - 1  # the largest primary key any of the databases stores
MAX_CHOSEN = 500
PASSWORD_MAX_BYTES = 1023  # what OpenSSL's PKCS#12 and PEM encryption take (cryptography refuses more)
TEXT_MAX = 10_000  # free text (notes): far more than anyone writes, far less than a request may carry
URL_MAX = 2_000


def _valid_id(value) -> bool:
    text = str(value).strip()
    return text.isascii() and text.isdigit() and 0 < int(text) <= MAX_ID


class BoundedModelChoiceField(forms.ModelChoiceField):
    def to_python(self, value):
        if value not in self.empty_values and not _valid_id(value):
            raise ValidationError(self.error_messages["invalid_choice"], code="invalid_choice")
        return super().to_python(value)


class BoundedModelMultipleChoiceField(forms.ModelMultipleChoiceField):
    def clean(self, value):
        values = value if isinstance(value, list | tuple) else ([] if value in self.empty_values else [value])
        if len(values) > MAX_CHOSEN:
            raise ValidationError(f"At most {MAX_CHOSEN} may be chosen.", code="too_many")
        for item in values:
            if not _valid_id(item):
                raise ValidationError(
                    self.error_messages["invalid_pk_value"],
                    code="invalid_pk_value",
                    params={"pk": str(item)[:20]},
                )
        return super().clean(value)


class PasswordField(forms.CharField):
    """A password as typed (not stripped), at most what OpenSSL takes."""

    def __init__(self, **kwargs):
        kwargs.setdefault("strip", False)
        kwargs.setdefault("required", False)
        super().__init__(**kwargs)

    def clean(self, value):
        value = super().clean(value)
        if value and len(value.encode("utf-8")) > PASSWORD_MAX_BYTES:
            raise ValidationError(f"At most {PASSWORD_MAX_BYTES} bytes.", code="max_length")
        if "\x00" in (value or ""):
            raise ValidationError("A password cannot contain a NUL character.", code="invalid")
        return value
