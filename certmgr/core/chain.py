"""Put certificates in order: leaf first, then each issuer, with the links verified.

Issuers are looked up in an index of subject names (a certificate names its issuer, RFC 5280
§4.1.2.4), preferring the one whose key identifier the child names (§4.2.1.1), and a signature
is checked only for a link found there: once per candidate key, never for every pair. The
checks are counted too, so many certificates that all claim one name cannot make it quadratic.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm

from .errors import InputError
from .facts import spki_der

# Signature checks per certificate: real chains need one or two (a self-signed root checks itself).
_CHECKS_PER_CERTIFICATE = 4
_LISTED = 5  # subjects named in a message before "and N more"
# Absent, or in extensions that do not decode: certificate_facts names the latter for the leaf.
_NO_EXTENSION = (x509.ExtensionNotFound, x509.DuplicateExtension, x509.UnsupportedGeneralNameType, ValueError)


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


class _Links:
    """Who issued whom among ``certs`` (by position), found through the index and remembered."""

    def __init__(self, certs: list[x509.Certificate]):
        self.certs = certs
        self.subject = [c.subject.public_bytes() for c in certs]
        self.issuer = [c.issuer.public_bytes() for c in certs]
        self.spki = [spki_der(c.public_key()) for c in certs]
        # subject -> key -> the certificates with that subject and key, in input order
        self.index: dict[bytes, dict[bytes, list[int]]] = defaultdict(lambda: defaultdict(list))
        for i in range(len(certs)):
            self.index[self.subject[i]][self.spki[i]].append(i)
        self.checks_left = _CHECKS_PER_CERTIFICATE * len(certs) + 8
        self._parents: dict[int, list[int]] = {}

    def self_issued(self, i: int) -> bool:
        return self.subject[i] == self.issuer[i]

    def named_issuer_present(self, i: int, among: set[int]) -> bool:
        return any(j in among for keyed in self.index.get(self.issuer[i], {}).values() for j in keyed)

    def parents(self, child: int) -> list[int]:
        """The other certificates whose key signed ``child``."""
        if child not in self._parents:
            self._parents[child] = [j for j in self._signer(child) if j != child]
        return self._parents[child]

    def _signer(self, child: int) -> list[int]:
        by_key = self.index.get(self.issuer[child], {})
        if self.self_issued(child):
            if self._verify(child, child):
                # A signature verifies under one key only: a self-signed certificate's issuers are
                # the certificates with its own name and key, and no other needs checking.
                return by_key[self.spki[child]]
            by_key = {key: holders for key, holders in by_key.items() if key != self.spki[child]}
        groups = list(by_key.values())
        if wanted := _authority_key_id(self.certs[child]):
            groups.sort(key=lambda holders: _subject_key_id(self.certs[holders[0]]) != wanted)
        for holders in groups:
            if self._verify(child, holders[0]):
                return holders
        return []

    def _verify(self, child: int, issuer: int) -> bool:
        self.checks_left -= 1
        if self.checks_left < 0:
            raise InputError(
                InputError.TOO_COMPLEX,
                f"The input's {len(self.certs)} certificates name each other in too many ways to "
                "work out a chain (many share one name). Import one certificate with its chain.",
            )
        return issued(self.certs[child], self.certs[issuer])


def order_chain(certs: list[x509.Certificate], leaf: x509.Certificate | None = None) -> OrderedChain:
    """Order ``certs`` leaf first. ``leaf`` is given when a private key picked it."""
    certs = list(dict.fromkeys(certs))  # duplicates dropped: certificates compare by their DER
    if len(certs) == 1:
        return OrderedChain((certs[0],), ())
    links = _Links(certs)
    chain = [certs.index(leaf) if leaf is not None else _find_leaf(links)]
    remaining = set(range(len(certs))) - {chain[0]}
    warnings: list[str] = []
    while remaining:
        current = chain[-1]
        if links.self_issued(current):
            break
        issuer = next((j for j in links.parents(current) if j in remaining), None)
        if issuer is None:
            if links.named_issuer_present(current, remaining):
                warnings.append(
                    f"The certificate for '{certs[current].issuer.rfc4514_string()}' is in the input "
                    f"but its signature does not verify '{certs[current].subject.rfc4514_string()}'."
                )
            break
        chain.append(issuer)
        remaining.discard(issuer)
    if remaining:
        last = certs[chain[-1]]
        if last.issuer != last.subject:
            warnings.append(
                f"Missing intermediate: no certificate for the issuer "
                f"'{last.issuer.rfc4514_string()}' of '{last.subject.rfc4514_string()}'."
            )
        warnings.append(
            f"Not part of the chain, ignored: {_subjects([certs[i] for i in sorted(remaining)])}."
        )
    return OrderedChain(tuple(certs[i] for i in chain), tuple(warnings))


def _find_leaf(links: _Links) -> int:
    """The leaf is the certificate that issued none of the others; prefer a non-CA one."""
    issuers = {parent for child in range(len(links.certs)) for parent in links.parents(child)}
    candidates = [i for i in range(len(links.certs)) if i not in issuers]
    if len(candidates) > 1:
        non_ca = [i for i in candidates if not _is_ca(links.certs[i])]
        candidates = non_ca or candidates
    if len(candidates) != 1:
        raise InputError(
            InputError.AMBIGUOUS,
            f"The input holds {len(candidates)} unrelated certificates "
            f"({_subjects([links.certs[i] for i in candidates])}). "
            "Import one certificate (with its chain) at a time.",
        )
    return candidates[0]


def _subjects(certs: list[x509.Certificate]) -> str:
    named = ", ".join(f"'{c.subject.rfc4514_string()}'" for c in certs[:_LISTED])
    return named + (f" and {len(certs) - _LISTED} more" if len(certs) > _LISTED else "")


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except _NO_EXTENSION:
        return False


def _authority_key_id(cert: x509.Certificate) -> bytes | None:
    try:
        return cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier
    except _NO_EXTENSION:
        return None


def _subject_key_id(cert: x509.Certificate) -> bytes | None:
    try:
        return cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    except _NO_EXTENSION:
        return None
