"""core.files.parse_files: outcomes in the order of the paths, whoever parsed them.

With worker processes, this process parses chunks past the workers' window itself while the next
outcome is not back; the caller must not be able to tell.
"""

from __future__ import annotations

from cryptography.hazmat.primitives import hashes

from certmgr.core import files
from certmgr.core.parse import ParsedInput
from tests import certs


def test_outcomes_keep_the_order_of_the_paths_whoever_parsed_them(tmp_path):
    good = [certs.issue(f"bulk-{n}", serial=0x3000 + n) for n in range(3)]
    paths = []
    # More than the window of files in flight, so that chunks past it exist to be parsed here.
    for n in range(files.IN_FLIGHT_FILES + 5 * files.CHUNK + 7):
        path = tmp_path / f"{n:05d}.pem"
        path.write_bytes(b"not a certificate" if n % 97 == 0 else good[n % 3].pem)
        paths.append(path)

    here = list(files.parse_files(paths, None, 1 << 20, jobs=0))
    pooled = list(files.parse_files(paths, None, 1 << 20, jobs=1))

    expected = [
        None if n % 97 == 0 else good[n % 3].cert.fingerprint(hashes.SHA256()).hex()
        for n in range(len(paths))
    ]
    assert [o.leaf.sha256 if isinstance(o, ParsedInput) else None for o in here] == expected
    assert pooled == here
