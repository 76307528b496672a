"""The one error type the parser raises: a code a program can branch on, a sentence a person can act on."""

from __future__ import annotations


class InputError(ValueError):
    """Input that is not a usable certificate. ``str()`` is safe to show: it never holds secrets."""

    EMPTY = "empty"
    TOO_LARGE = "too_large"
    WRONG_PASSWORD = "wrong_password"  # noqa: S105 (an error code, not a password)
    PASSWORD_REQUIRED = "password_required"  # noqa: S105
    LEGACY_PKCS12 = "legacy_pkcs12"
    TRUNCATED = "truncated"
    CORRUPT = "corrupt"
    KEY_MISMATCH = "key_mismatch"
    KEY_WITHOUT_CERTIFICATE = "key_without_certificate"
    NOT_A_CERTIFICATE = "not_a_certificate"
    UNSUPPORTED_KEY = "unsupported_key"
    AMBIGUOUS = "ambiguous"
    NO_CERTIFICATE_IN_BINDING = "no_certificate_in_binding"
    ATTESTED_BINDING = "attested_binding"  # X509_ATTESTED: the Zero Trust Identity Service's certificate
    # Bounds on the work one input may cause (limits.py): named, so a refusal is never a timeout.
    TOO_COSTLY = "too_costly"  # key derivation beyond the limit
    TOO_MANY = "too_many"  # more certificates, keys or entries than the limit
    TOO_COMPLEX = "too_complex"  # nesting or name collisions no real input has
    NOT_A_FILE = "not_a_file"  # a pipe, socket or device named as a file: reading it could wait forever

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message
