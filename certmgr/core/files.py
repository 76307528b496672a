"""Certificate files from disk, parsed one by one or by a pool of worker processes.

The parser is pure CPU work and Django-free, so a large import can parse in other processes
while the caller stores what is already parsed. Workers are spawned (not forked), so they never
share a database connection with the caller; each imports only this package.
"""

from __future__ import annotations

import functools
import itertools
import multiprocessing
import os
import stat
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path

from .errors import InputError
from .limits import DEFAULT_LIMITS, ParseLimits
from .parse import ParsedInput, parse_certificate_input, too_large

# What a worker sends back for a file it could not use: (code, message). An InputError itself
# does not survive pickling (its constructor takes two arguments).
Failure = tuple[str, str]


def read_limited(path: str | Path, max_bytes: int) -> bytes:
    # Opened without blocking: opening a FIFO for reading waits for a writer, forever. Only a
    # regular file is then read (a terminal waits for a line, /dev/zero never ends).
    with open(os.open(path, os.O_RDONLY | os.O_NONBLOCK), "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise InputError(
                InputError.NOT_A_FILE, "Not a regular file: a pipe, socket or device is not read."
            )
        size = info.st_size
        if size > max_bytes:
            raise too_large(size, max_bytes)
        # Read what fstat announced (+1 to notice a file that grew): read(max_bytes) would
        # allocate the whole limit for every small file.
        data = handle.read(size + 1)
    if len(data) > max_bytes:
        raise too_large(len(data), max_bytes)
    return data


def parse_file(
    path: str | Path, password: str | None, max_bytes: int, limits: ParseLimits = DEFAULT_LIMITS
) -> ParsedInput | Failure:
    try:
        return parse_certificate_input(read_limited(path, max_bytes), password, max_bytes, limits)
    except InputError as exc:
        return exc.code, exc.message
    except OSError as exc:
        return "unreadable", f"Cannot read the file: {exc.strerror}."


def parse_files(
    paths: Iterable[str | Path],
    password: str | None,
    max_bytes: int,
    jobs: int = 1,
    limits: ParseLimits = DEFAULT_LIMITS,
) -> Iterator[ParsedInput | Failure]:
    """Outcomes in the order of ``paths``; parsed by ``jobs`` worker processes, or here if 0.
    ``paths`` is read as the outcomes are taken (up to the window of files in flight ahead): a
    generator of paths is never held whole."""
    parse = functools.partial(parse_file, password=password, max_bytes=max_bytes, limits=limits)
    if jobs < 1:
        yield from map(parse, paths)
        return
    context = multiprocessing.get_context("spawn")
    # Executor.map would submit every file at once and keep every parsed result until the caller
    # takes it: memory would grow with the import. A window of chunks in flight keeps it flat.
    # When the next outcome is not back yet (the workers starting, or behind), this process parses
    # the next chunk past the window itself instead of waiting; up to a window of those too.
    remaining = iter(paths)
    chunks = iter(lambda: list(itertools.islice(remaining, CHUNK)), [])
    queue: deque[Future | list[ParsedInput | Failure]] = deque()  # in the order of paths
    in_flight = parsed_here = 0
    with ProcessPoolExecutor(jobs, mp_context=context) as pool:
        while True:
            while in_flight * CHUNK < IN_FLIGHT_FILES and (chunk := next(chunks, None)) is not None:
                queue.append(pool.submit(_parse_chunk, parse, chunk))
                in_flight += 1
            if not queue:
                return
            head = queue[0]
            if isinstance(head, Future) and not head.done() and parsed_here * CHUNK < IN_FLIGHT_FILES:
                if (chunk := next(chunks, None)) is not None:
                    queue.append(_parse_chunk(parse, chunk))
                    parsed_here += 1
                    continue
            queue.popleft()
            if isinstance(head, Future):
                in_flight -= 1
                yield from head.result()
            else:
                parsed_here -= 1
                yield from head


CHUNK = 32  # files per task: fewer round trips to the workers
# Files parsed ahead: more than the caller's batch (1,000), so the workers go on while it stores
# one; few enough that memory stays flat.
IN_FLIGHT_FILES = 2048


def _parse_chunk(parse, chunk: Sequence[str | Path]) -> list[ParsedInput | Failure]:
    return [parse(path) for path in chunk]
