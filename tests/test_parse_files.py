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


def test_a_generator_of_paths_is_read_only_a_window_ahead_of_the_outcomes_taken(tmp_path):
    """An import of 100,000 files lists them as it goes: parse_files must not take the whole list
    before its first outcome (the import's memory would grow with the number of files)."""
    path = tmp_path / "one.pem"
    path.write_bytes(certs.issue("window", serial=0x3100).pem)
    total = 4 * files.IN_FLIGHT_FILES
    listed = 0

    def paths():
        nonlocal listed
        for _ in range(total):
            listed += 1
            yield path

    for jobs in (0, 1):
        listed = 0
        outcomes = files.parse_files(paths(), None, 1 << 20, jobs=jobs)
        first = next(outcomes)
        assert isinstance(first, ParsedInput)
        assert listed <= 2 * files.IN_FLIGHT_FILES + files.CHUNK, (jobs, listed)
        assert sum(1 for _ in outcomes) == total - 1 and listed == total
