"""RC2-CBC decryption (RFC 2268), for looking inside legacy PKCS#12 files.

Old exports encrypt their certificates with RC2 with 40-bit keys; cryptography offers RC2 with
128-bit keys only. The parser decrypts such a part itself to see what it holds before OpenSSL
opens it (pkcs12walk.py), so this is the cipher in plain Python: slow (tens of microseconds a
block), which is why callers bound how much of it they decrypt.
"""

from __future__ import annotations

# RFC 2268 §2: PITABLE, a permutation of 0..255 from the digits of pi.
_PI = bytes.fromhex(
    "d978f9c419ddb5ed28e9fd794aa0d89dc67e37832b76538e624c6488448bfba2"
    "179a59f587b34f1361456d8d09817d32bd8f40eb86b77b0bf09521225c6b4e82"
    "54d66593ce60b21c7356c014a78cf1dc1275ca1f3bbee4d1423dd430a33cb626"
    "6fbf0eda4669075727f21d9bbc944303f811c7f690ef3ee706c3d52fc8661ed7"
    "08e8eade8052eef784aa72ac354d6a2a961ad2715a1549744b9fd05e0418a4ec"
    "c2e0416e0f51cbcc2491af50a1f47039997c3a8523b8b47afc02365b25559731"
    "2d5dfa98e38a92ae05df2910676cbac9d300e6cfe19ea82c6316013f58e289a9"
    "0d38341bab33ffb0bb480c5fb9b1cd2ec5f3db47e5a59c770aa62068fe7fc1ad"
)
_MASK = 0xFFFF


def expand_key(key: bytes, effective_bits: int) -> list[int]:
    """RFC 2268 §2: the 64 16-bit subkeys K[0..63]."""
    if not 1 <= len(key) <= 128 or not 1 <= effective_bits <= 1024:
        raise ValueError("RC2 key or effective key length out of range")
    table = bytearray(key) + bytearray(128 - len(key))
    for i in range(len(key), 128):
        table[i] = _PI[(table[i - 1] + table[i - len(key)]) & 0xFF]
    t8 = (effective_bits + 7) // 8
    tm = 0xFF >> (8 * t8 - effective_bits)
    table[128 - t8] = _PI[table[128 - t8] & tm]
    for i in range(127 - t8, -1, -1):
        table[i] = _PI[table[i + 1] ^ table[i + t8]]
    return [table[2 * i] | table[2 * i + 1] << 8 for i in range(64)]


def _decrypt_block(k: list[int], block: bytes) -> bytes:
    r0, r1, r2, r3 = (block[i] | block[i + 1] << 8 for i in (0, 2, 4, 6))
    j = 63
    for rnd in range(16):  # 5 mixing rounds, a mashing, 6 mixing, a mashing, 5 mixing: reversed
        r3 = (((r3 >> 5) | (r3 << 11)) - k[j] - (r2 & r1) - (~r2 & r0)) & _MASK
        r2 = (((r2 >> 3) | (r2 << 13)) - k[j - 1] - (r1 & r0) - (~r1 & r3)) & _MASK
        r1 = (((r1 >> 2) | (r1 << 14)) - k[j - 2] - (r0 & r3) - (~r0 & r2)) & _MASK
        r0 = (((r0 >> 1) | (r0 << 15)) - k[j - 3] - (r3 & r2) - (~r3 & r1)) & _MASK
        j -= 4
        if rnd in (4, 10):
            r3 = (r3 - k[r2 & 63]) & _MASK
            r2 = (r2 - k[r1 & 63]) & _MASK
            r1 = (r1 - k[r0 & 63]) & _MASK
            r0 = (r0 - k[r3 & 63]) & _MASK
    return bytes((r0 & 0xFF, r0 >> 8, r1 & 0xFF, r1 >> 8, r2 & 0xFF, r2 >> 8, r3 & 0xFF, r3 >> 8))


def decrypt_cbc(key: bytes, effective_bits: int, iv: bytes, data: bytes) -> bytes:
    """Decrypt whole 8-byte blocks; padding is the caller's business."""
    if len(iv) != 8 or len(data) % 8:
        raise ValueError("RC2-CBC needs an 8-byte IV and whole 8-byte blocks")
    k = expand_key(key, effective_bits)
    out = bytearray()
    previous = iv
    for pos in range(0, len(data), 8):
        block = data[pos : pos + 8]
        out += bytes(a ^ b for a, b in zip(_decrypt_block(k, block), previous, strict=True))
        previous = block
    return bytes(out)
