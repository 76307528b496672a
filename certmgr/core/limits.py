"""How much work one input may ask of the parser (issue 12: uploads cannot freeze the server).

Plain values, so Django settings can set them (CERTMGR_MAX_KDF_ITERATIONS,
CERTMGR_MAX_CERTS_PER_INPUT) without the core importing Django.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import InputError

# RSA private keys are validated as they are loaded, primality tests of p and q included: 0.3 s of
# CPU at 4096 bits, 4 s at 8192, minutes for one prime of 20,000 bits. IAS generates 2048 or 4096.
MAX_RSA_KEY_BITS = 4096


@dataclass(frozen=True)
class ParseLimits:
    # Key-derivation iterations of one input, all together: a PKCS#12 file's MAC, each encrypted
    # part and each private key; scrypt counts N·r·p. Tools use 2,048 to 600,000.
    max_kdf_iterations: int = 2_000_000
    # Certificates in one input, and as many private keys. A chain is two to five.
    max_certificates: int = 100

    def __post_init__(self) -> None:
        if self.max_kdf_iterations < 1 or self.max_certificates < 1:
            raise ValueError("parse limits must be positive")


DEFAULT_LIMITS = ParseLimits()


def check_rsa_key(subject: str, n: int, p: int, q: int) -> None:
    """Before an RSA private key is validated: its modulus within MAX_RSA_KEY_BITS and its primes
    the modulus's factors, so that neither prime can be larger."""
    if n.bit_length() > MAX_RSA_KEY_BITS:
        raise InputError(
            InputError.TOO_COSTLY,
            f"{subject} is an RSA key of {n.bit_length()} bits; the portal reads RSA keys of up to "
            f"{MAX_RSA_KEY_BITS} bits (IAS generates 2048 or 4096). Upload the certificate without its key.",
        )
    if p * q != n:
        raise InputError(
            InputError.CORRUPT, f"{subject} is not a valid RSA key: its primes are not its modulus's."
        )
