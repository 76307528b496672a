"""Turn whatever a team has (PEM, DER, PKCS#7, PKCS#12, a service key) into one certificate.

Plain bytes and an optional password in, :class:`ParsedInput` out, or an :class:`InputError`
whose message names the problem; no other exception escapes. The work one input can cause is
bounded by :class:`ParseLimits`. Nothing here touches Django, disk or the network.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.exceptions import InternalError, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs7, pkcs12

from . import der, pbe, pkcs12diag, pkcs12walk, servicekey
from .chain import order_chain
from .errors import InputError
from .facts import CertificateFacts, certificate_facts, spki_der
from .limits import DEFAULT_LIMITS, ParseLimits, check_rsa_key

DEFAULT_MAX_BYTES = 1024 * 1024
_LABEL = re.compile(r"[A-Z0-9][A-Z0-9 ]{0,40}")

_KEY_LABELS = {"PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY", "ENCRYPTED PRIVATE KEY"}
_CERT_LABELS = {"CERTIFICATE", "X509 CERTIFICATE", "TRUSTED CERTIFICATE"}
_PKCS7_LABELS = {"PKCS7", "CERTIFICATE CHAIN"}


@dataclass(frozen=True)
class ParsedInput:
    leaf: CertificateFacts
    chain: tuple[CertificateFacts, ...]  # leaf first
    format: str  # pem, der, pkcs7, pkcs12, service-key, vcap-services
    private_key_der: bytes | None = field(default=None, repr=False)  # PKCS#8, unencrypted
    binding: servicekey.Binding | None = None
    warnings: tuple[str, ...] = ()

    @property
    def has_private_key(self) -> bool:
        return self.private_key_der is not None


# What the parsing libraries raise on input they cannot handle, beyond ValueError: cryptography's
# own exceptions derive from Exception directly.
_LIBRARY_ERRORS = (
    ValueError,
    TypeError,
    OverflowError,
    UnsupportedAlgorithm,
    InternalError,
    x509.InvalidVersion,
    x509.DuplicateExtension,
    x509.UnsupportedGeneralNameType,
)


def parse_certificate_input(
    data: bytes,
    password: str | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    limits: ParseLimits = DEFAULT_LIMITS,
) -> ParsedInput:
    try:
        return _parse(data, password, max_bytes, limits)
    except InputError:
        raise
    except RecursionError:
        raise InputError(InputError.TOO_COMPLEX, "The input is nested too deeply to be read.") from None
    except BaseException as exc:  # noqa: BLE001 (narrowed at once; everything else is re-raised)
        if not (isinstance(exc, _LIBRARY_ERRORS) or _is_rust_panic(exc)):
            raise
        # Whatever the specific checks did not foresee is still bad input, not a crash; the
        # library's own text is left out, as it may quote the input.
        raise InputError(
            InputError.CORRUPT, "The input could not be decoded as a certificate (a malformed structure)."
        ) from None


def _is_rust_panic(exc: BaseException) -> bool:
    """pyo3's PanicException: a panic inside cryptography's Rust code. It derives from
    BaseException (like KeyboardInterrupt) and cannot be imported, so it is told by its name."""
    kind = type(exc)
    return kind.__name__ == "PanicException" and kind.__module__ == "pyo3_runtime"


def _parse(data: bytes, password: str | None, max_bytes: int, limits: ParseLimits) -> ParsedInput:
    if len(data) > max_bytes:
        raise too_large(len(data), max_bytes)
    if not data.strip():
        raise InputError(InputError.EMPTY, "The input is empty: choose a file or paste a certificate.")
    _check_password(password)
    text = _as_text(data)
    if text is None:
        return _parse_binary(data, password, limits)
    text = text.strip()
    single = _single_pem_certificate(text)
    if single is not None:
        return single
    if servicekey.looks_like_binding(text):
        binding = servicekey.extract(text)
        parsed = _parse_text(binding.certificate + "\n" + (binding.key or ""), None, limits)
        warnings = parsed.warnings + servicekey.check_expiry(binding, parsed.leaf.not_after)
        return ParsedInput(
            parsed.leaf, parsed.chain, binding.source, parsed.private_key_der, binding, warnings
        )
    return _parse_text(text, password, limits)


def _check_password(password: str | None) -> None:
    # OpenSSL reads passwords as C strings: a NUL would cut it short (cryptography panics on one).
    if password and "\x00" in password:
        raise InputError(
            InputError.WRONG_PASSWORD,
            "The password contains a NUL character; no certificate file can be protected with one.",
        )
    if password and not password.isascii():
        try:
            password.encode("utf-8")
        except UnicodeEncodeError:
            raise InputError(
                InputError.WRONG_PASSWORD, "The password is not valid text (it holds a lone surrogate)."
            ) from None


def _too_many(noun: str, count: int, limit: int) -> InputError:
    return InputError(
        InputError.TOO_MANY,
        f"The input holds {count} {noun}; the limit is {limit}. A certificate with its chain is a handful.",
    )


def too_large(size: int, max_bytes: int) -> InputError:
    return InputError(
        InputError.TOO_LARGE,
        f"The input is {_size(size)}; the limit is {_size(max_bytes)}. "
        "A certificate with its chain is a few kilobytes.",
    )


# --- text (PEM) ---------------------------------------------------------------------------


def normalize_pem_text(text: str) -> str:
    """Undo what copying does to PEM: quotes, literal \\n from JSON, CRLF, odd indentation."""
    text = text.strip().lstrip("\ufeff")
    if len(text) > 1 and text[0] == text[-1] == '"':
        text = text[1:-1]
    if "\\n" in text and "-----BEGIN" in text:
        text = text.replace("\\r\\n", "\n").replace("\\n", "\n")
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _parse_text(text: str, password: str | None, limits: ParseLimits) -> ParsedInput:
    text = normalize_pem_text(text)
    blocks = _pem_blocks(text)
    if not blocks:
        return _parse_bare_base64(text, password, limits)
    keys = [block for block in blocks if block[0] in _KEY_LABELS]
    for noun, count in (
        ("certificates", sum(b[0] in _CERT_LABELS for b in blocks)),
        ("private keys", len(keys)),
    ):
        if count > limits.max_certificates:  # counted before any is decoded
            raise _too_many(noun, count, limits.max_certificates)
    certs: list[x509.Certificate] = []
    for label, body, _ in blocks:
        if label in _CERT_LABELS:
            certs.append(_load_der_certificate(_b64(body, label), "PEM"))
        elif label in _PKCS7_LABELS:
            certs.extend(_load_pkcs7(_b64(body, label), limits))
    if not certs and keys:
        raise _key_without_certificate()
    if not certs:
        labels = ", ".join(sorted({label for label, _, _ in blocks}))
        raise InputError(InputError.NOT_A_CERTIFICATE, f"The PEM input holds no certificate, only: {labels}.")
    fmt = "pkcs7" if any(label in _PKCS7_LABELS for label, _, _ in blocks) else "pem"
    # Only the first key is used, so only it is decrypted and loaded.
    key = _load_pem_key(*keys[0], password, limits) if keys else None
    extra = (f"The input holds {len(keys)} private keys; only the first was read.",) if len(keys) > 1 else ()
    return _assemble(certs, key, fmt, limits, extra)


def _single_pem_certificate(text: str) -> ParsedInput | None:
    """The common file, one PEM certificate and nothing around it, read by cryptography's own PEM
    reader: the general path below costs half as much again as the certificate's facts. None
    whenever the text is anything else or that reader refuses it: the general path then reads it,
    or names what is wrong with it."""
    if not (text.startswith(_SINGLE_BEGIN) and text.endswith(_SINGLE_END)) or text.count("-----") != 4:
        return None
    if "\\" in text or "\r" in text:  # escaped or CRLF line ends: normalize_pem_text's work
        return None
    try:
        cert = x509.load_pem_x509_certificate(text.encode("ascii"))
    except Exception:  # noqa: BLE001 - any refusal: the general path gives the reason
        return None
    leaf = certificate_facts(cert)
    return ParsedInput(leaf, (leaf,), "pem")


_SINGLE_BEGIN, _SINGLE_END = "-----BEGIN CERTIFICATE-----\n", "\n-----END CERTIFICATE-----"


def _pem_blocks(text: str) -> list[tuple[str, str, str]]:
    """(label, base64 body, RFC 1421 headers) of each block; a block without its END is truncated."""
    blocks = []
    pos = 0
    while (begin := text.find("-----BEGIN ", pos)) != -1:
        label_end = text.find("-----", begin + 11)
        label = text[begin + 11 : label_end]
        if label_end == -1 or not _LABEL.fullmatch(label):
            # Never quote it: a damaged BEGIN line can run into the key material after it.
            raise InputError(
                InputError.CORRUPT, "A '-----BEGIN ...-----' line of the PEM input is malformed."
            )
        end_marker = f"-----END {label}-----"
        end = text.find(end_marker, label_end) if label_end != -1 else -1
        next_begin = text.find("-----BEGIN ", begin + 11)
        if end == -1 or -1 < next_begin < end:
            raise _truncated_pem(label)
        head, blank, rest = text[label_end + 5 : end].lstrip("\n").partition("\n\n")
        if blank and ":" in head:  # e.g. Proc-Type/DEK-Info of a legacy encrypted key
            blocks.append((label, rest, head.strip()))
        else:
            blocks.append((label, text[label_end + 5 : end], ""))
        pos = end + len(end_marker)
    return blocks


def _truncated_pem(label: str) -> InputError:
    return InputError(
        InputError.TRUNCATED,
        f"The PEM block '{label}' is truncated: its '-----END {label}-----' line is missing.",
    )


def _b64(body: str, label: str) -> bytes:
    compact = "".join(body.split())
    try:
        return base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        raise InputError(
            InputError.CORRUPT,
            f"The PEM block '{label}' is corrupt: its body is not valid base64.",
        ) from None


def _parse_bare_base64(text: str, password: str | None, limits: ParseLimits) -> ParsedInput:
    """Text without PEM armour: perhaps the base64 body alone (IAS 'Insert' accepts it)."""
    compact = "".join(text.split())
    if len(compact) > 64 and re.fullmatch(r"[A-Za-z0-9+/]+={0,2}", compact):
        try:
            data = base64.b64decode(compact, validate=True)
        except (binascii.Error, ValueError):
            data = b""
        if data[:1] == b"\x30":
            return _parse_binary(data, password, limits)
    raise InputError(
        InputError.NOT_A_CERTIFICATE,
        "This is not a certificate: no '-----BEGIN CERTIFICATE-----' block, "
        "and not a service key, DER, PKCS#7 or PKCS#12 file.",
    )


def _load_pem_key(label: str, body: str, headers: str, password: str | None, limits: ParseLimits):
    b64 = "".join(body.split())
    lines = [b64[i : i + 64] for i in range(0, len(b64), 64)]
    head = headers + "\n\n" if headers else ""
    pem = f"-----BEGIN {label}-----\n{head}" + "\n".join(lines) + f"\n-----END {label}-----\n"
    encrypted = label == "ENCRYPTED PRIVATE KEY" or "ENCRYPTED" in headers
    if encrypted and not password:
        raise InputError(
            InputError.PASSWORD_REQUIRED,
            "The private key is encrypted: enter its password.",
        )
    secret = password.encode("utf-8") if encrypted and password else None
    if label == "ENCRYPTED PRIVATE KEY":
        pbe.check_key_cost(_b64(body, label), limits.max_kdf_iterations)
    try:
        # Validated below, once its size is known to be bounded (limits.check_rsa_key).
        key = serialization.load_pem_private_key(
            pem.encode("ascii"), secret, unsafe_skip_rsa_key_validation=True
        )
    except ValueError:
        if encrypted:
            raise InputError(
                InputError.WRONG_PASSWORD, "Wrong password for the encrypted private key."
            ) from None
        raise InputError(
            InputError.CORRUPT, f"The PEM block '{label}' is not a readable private key."
        ) from None
    except (TypeError, binascii.Error):
        raise InputError(
            InputError.CORRUPT, f"The PEM block '{label}' is not a readable private key."
        ) from None
    except UnsupportedAlgorithm:
        raise _unsupported_key(label) from None
    return _supported_key(_validated(key))


def _validated(key):
    if not isinstance(key, rsa.RSAPrivateKey):
        return key
    numbers = key.private_numbers()
    check_rsa_key("The private key", numbers.public_numbers.n, numbers.p, numbers.q)
    # The validation skipped on loading, on the decrypted key: no key derivation runs twice.
    unencrypted = key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    try:
        return serialization.load_der_private_key(unencrypted, None)
    except ValueError:
        raise InputError(InputError.CORRUPT, "The private key is not a valid RSA key.") from None


def _supported_key(key):
    if not isinstance(key, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey)):
        raise _unsupported_key(type(key).__name__)
    return key


def _unsupported_key(kind: str) -> InputError:
    return InputError(
        InputError.UNSUPPORTED_KEY,
        f"Unsupported private key ({kind}): IAS client certificates use RSA or EC keys.",
    )


def _key_without_certificate() -> InputError:
    return InputError(
        InputError.KEY_WITHOUT_CERTIFICATE,
        "The input holds a private key but no certificate. Add the certificate "
        "(paste both, or upload the .p12).",
    )


# --- binary (DER, PKCS#7, PKCS#12) ----------------------------------------------------------


def _parse_binary(data: bytes, password: str | None, limits: ParseLimits) -> ParsedInput:
    tag, kids = -1, list[der.Element]()
    if data[0] == der.SEQUENCE:  # certificates, PKCS#7 and PKCS#12 all are; a PNG is not
        try:
            tag, kids = der.outer(data)
        except der.Truncated:
            raise InputError(
                InputError.TRUNCATED,
                "The binary file is truncated: it is shorter than its own length field says.",
            ) from None
        except der.DerError:
            pass
    if tag != der.SEQUENCE or not kids:
        raise InputError(
            InputError.NOT_A_CERTIFICATE,
            "This is not a certificate: the file is not PEM text, DER, PKCS#7 or PKCS#12.",
        )
    first = kids[0][0]
    if pkcs12diag.looks_like_pkcs12(data):
        return _parse_pkcs12(data, password, limits)
    if first == der.OID:
        return _assemble(_load_pkcs7(data, limits), None, "pkcs7", limits)
    if first == der.INTEGER:
        raise _key_without_certificate()
    return _assemble([_load_der_certificate(data, "DER")], None, "der", limits)


def _load_der_certificate(data: bytes, kind: str) -> x509.Certificate:
    try:
        return x509.load_der_x509_certificate(data)
    except x509.InvalidVersion as exc:
        raise _invalid_version(f"The {kind} certificate", exc) from None
    except ValueError:
        pass
    try:
        der.read_tlv(data)
    except der.Truncated:
        raise InputError(
            InputError.TRUNCATED, f"The {kind} certificate is truncated: data is missing at its end."
        ) from None
    except der.DerError:
        pass
    raise InputError(InputError.CORRUPT, f"The {kind} certificate is corrupt: it cannot be decoded as X.509.")


def _invalid_version(what: str, exc: x509.InvalidVersion) -> InputError:
    return InputError(
        InputError.CORRUPT,
        f"{what} has version field {exc.parsed_version}: X.509 has versions 1 to 3 (fields 0 to 2).",
    )


def _load_pkcs7(data: bytes, limits: ParseLimits) -> list[x509.Certificate]:
    try:
        certs = pkcs7.load_der_pkcs7_certificates(data)
    except x509.InvalidVersion as exc:
        raise _invalid_version("A certificate in the PKCS#7 bundle", exc) from None
    except ValueError:
        raise InputError(
            InputError.CORRUPT, "The PKCS#7 (.p7b) bundle is corrupt: it cannot be decoded."
        ) from None
    if not certs:
        raise InputError(InputError.NOT_A_CERTIFICATE, "The PKCS#7 bundle holds no certificate.")
    if len(certs) > limits.max_certificates:
        raise _too_many("certificates", len(certs), limits.max_certificates)
    return certs


def _parse_pkcs12(data: bytes, password: str | None, limits: ParseLimits) -> ParsedInput:
    candidates: list[bytes | None] = [password.encode("utf-8")] if password else [None, b""]
    # Every key derivation the file asks for is read and bounded before OpenSSL runs any.
    found = pkcs12walk.survey(data, limits)
    for secret in candidates:
        if not pkcs12walk.inspect(found, secret):
            continue
        try:
            bundle = pkcs12.load_pkcs12(data, secret)
        except x509.InvalidVersion as exc:
            raise _invalid_version("A certificate in the PKCS#12 file", exc) from None
        except ValueError:
            continue
        if bundle.cert is None:
            if bundle.key is not None:
                raise _key_without_certificate()
            raise InputError(InputError.NOT_A_CERTIFICATE, "The PKCS#12 file holds no certificate.")
        key = _supported_key(bundle.key) if bundle.key is not None else None
        certs = [bundle.cert.certificate] + [c.certificate for c in bundle.additional_certs]
        return _assemble(certs, key, "pkcs12", limits)
    raise pkcs12diag.failure(data, candidates)


# --- assembly -------------------------------------------------------------------------------


def _assemble(
    certs: list[x509.Certificate], key, fmt: str, limits: ParseLimits, warnings: tuple[str, ...] = ()
) -> ParsedInput:
    if len(certs) > limits.max_certificates:
        raise _too_many("certificates", len(certs), limits.max_certificates)
    leaf = None
    if key is not None:
        wanted = spki_der(key.public_key())
        leaf = next((c for c in certs if spki_der(c.public_key()) == wanted), None)
        if leaf is None:
            raise InputError(
                InputError.KEY_MISMATCH,
                "The private key does not match the certificate: they are from different pairs.",
            )
    ordered = order_chain(certs, leaf)
    chain = tuple(certificate_facts(c) for c in ordered.certificates)
    key_der = None
    if key is not None:
        key_der = key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    return ParsedInput(chain[0], chain, fmt, key_der, None, ordered.warnings + warnings)


def _as_text(data: bytes) -> str | None:
    if data[:1] == b"\x30" and data[1:2] >= b"\x80":  # DER SEQUENCE, long length; "0..." is text
        return None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if any(ch in text for ch in "\x00\x01\x02\x03\x04\x05\x06\x07\x08\x0e\x0f"):
        return None
    return text


def _size(n: int) -> str:
    if n >= 1024 * 1024:
        return f"{n / (1024 * 1024):.1f} MiB"
    if n >= 1024:
        return f"{n / 1024:.1f} KiB"
    return f"{n} bytes"
