"""Run the parser on inputs in a child process, each under a time bound the parent enforces.

A hostile input might hang inside OpenSSL while holding the GIL, where no alarm or thread in the
same process can interrupt it; a child process can be killed. The child reports each outcome and
the parse time it measured itself (startup excluded), one JSON line per input.

Parent: ``run([(data, password), ...])``. Child: ``python -m tests.parse_child`` (pickled cases on
stdin; it imports only certmgr.core, no Django).
"""

from __future__ import annotations

import json
import pickle
import queue
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Outcome:
    kind: str  # parsed, input_error, escaped (another exception), hang, crashed
    detail: str  # format / error code / exception type
    message: str
    seconds: float


def run(
    cases: list[tuple[bytes, str | None]], per_case_seconds: float = 20.0, limits=None, max_bytes=None
) -> list[Outcome]:
    """Outcomes in order. A case that takes longer than ``per_case_seconds`` ends the run as a
    'hang' (the child is killed); a child that dies ends it as 'crashed'."""
    with tempfile.TemporaryFile() as stderr:
        child = subprocess.Popen(
            [sys.executable, "-m", "tests.parse_child"],
            cwd=REPO,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
        )
        lines: queue.Queue[bytes] = queue.Queue()
        threading.Thread(target=_forward, args=(child.stdout, lines), daemon=True).start()
        child.stdin.write(pickle.dumps((cases, limits, max_bytes)))
        child.stdin.close()
        outcomes = []
        try:
            for _ in cases:
                try:
                    line = lines.get(timeout=per_case_seconds)
                except queue.Empty:
                    outcomes.append(
                        Outcome("hang", "", f"no answer within {per_case_seconds} s", per_case_seconds)
                    )
                    break
                if not line:
                    stderr.seek(0)
                    tail = stderr.read().decode(errors="replace")[-2000:]
                    outcomes.append(Outcome("crashed", str(child.wait()), tail, 0.0))
                    break
                outcomes.append(Outcome(**json.loads(line)))
        finally:
            child.kill()
            child.wait()
        return outcomes


def _forward(stream, lines: queue.Queue[bytes]) -> None:
    for line in stream:
        lines.put(line)
    lines.put(b"")  # end of output: the child exited


def _main() -> None:
    from certmgr.core.errors import InputError
    from certmgr.core.limits import DEFAULT_LIMITS
    from certmgr.core.parse import DEFAULT_MAX_BYTES, parse_certificate_input

    cases, limits, max_bytes = pickle.load(sys.stdin.buffer)  # noqa: S301 (the parent process wrote it)
    for data, password in cases:
        start = time.perf_counter()
        try:
            parsed = parse_certificate_input(
                data, password, max_bytes or DEFAULT_MAX_BYTES, limits or DEFAULT_LIMITS
            )
            kind, detail, message = "parsed", parsed.format, f"{len(parsed.chain)} certificates"
        except InputError as error:
            kind, detail, message = "input_error", error.code, error.message
        except BaseException as exc:  # noqa: BLE001 (what escaped is the finding, reported to the parent)
            kind, detail, message = (
                "escaped",
                f"{type(exc).__module__}.{type(exc).__qualname__}",
                str(exc)[:200],
            )
        seconds = time.perf_counter() - start
        print(
            json.dumps({"kind": kind, "detail": detail, "message": message, "seconds": seconds}), flush=True
        )


if __name__ == "__main__":
    _main()
