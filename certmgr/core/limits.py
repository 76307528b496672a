"""How much work one input may ask of the parser (issue 12: uploads cannot freeze the server).

Plain values, so Django settings can set them (CERTMGR_MAX_KDF_ITERATIONS,
CERTMGR_MAX_CERTS_PER_INPUT) without the core importing Django.
"""

from __future__ import annotations

from dataclasses import dataclass


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
