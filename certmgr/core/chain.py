"""Put certificates in order: leaf first, then each issuer, with the links verified."""

from __future__ import annotations

from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm

from .errors import InputError


@dataclass(frozen=True)
class OrderedChain:
    certificates: tuple[x509.Certificate, ...]
    warnings: tuple[str, ...]


def issued(child: x509.Certificate, issuer: x509.Certificate) -> bool:
    if child.issuer != issuer.subject:
        return False
    try:
        child.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False
    return True


def order_chain(certs: list[x509.Certificate], leaf: x509.Certificate | None = None) -> OrderedChain:
    """Order ``certs`` leaf first. ``leaf`` is given when a private key picked it."""
    certs = _unique(certs)
    if len(certs) == 1:
        return OrderedChain((certs[0],), ())
    if leaf is None:
        leaf = _find_leaf(certs)
    chain = [leaf]
    remaining = [c for c in certs if c is not leaf and c != leaf]
    warnings: list[str] = []
    while remaining:
        current = chain[-1]
        if current.issuer == current.subject:
            break
        issuer = next((c for c in remaining if issued(current, c)), None)
        if issuer is None:
            if any(c.subject == current.issuer for c in remaining):
                warnings.append(
                    f"The certificate for '{current.issuer.rfc4514_string()}' is in the input "
                    f"but its signature does not verify '{current.subject.rfc4514_string()}'."
                )
            break
        chain.append(issuer)
        remaining.remove(issuer)
    if remaining:
        last = chain[-1]
        if last.issuer != last.subject:
            warnings.append(
                f"Missing intermediate: no certificate for the issuer "
                f"'{last.issuer.rfc4514_string()}' of '{last.subject.rfc4514_string()}'."
            )
        ignored = ", ".join(f"'{c.subject.rfc4514_string()}'" for c in remaining)
        warnings.append(f"Not part of the chain, ignored: {ignored}.")
    return OrderedChain(tuple(chain), tuple(warnings))


def _unique(certs: list[x509.Certificate]) -> list[x509.Certificate]:
    out: list[x509.Certificate] = []
    for cert in certs:
        if cert not in out:
            out.append(cert)
    return out


def _find_leaf(certs: list[x509.Certificate]) -> x509.Certificate:
    """The leaf is the certificate that issued none of the others; prefer a non-CA one."""
    candidates = [c for c in certs if not any(o is not c and issued(o, c) for o in certs)]
    if len(candidates) > 1:
        non_ca = [c for c in candidates if not _is_ca(c)]
        candidates = non_ca or candidates
    if len(candidates) != 1:
        subjects = ", ".join(f"'{c.subject.rfc4514_string()}'" for c in candidates)
        raise InputError(
            InputError.AMBIGUOUS,
            f"The input holds {len(candidates)} unrelated certificates ({subjects}). "
            "Import one certificate (with its chain) at a time.",
        )
    return candidates[0]


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False
