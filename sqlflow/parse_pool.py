"""Validating many models' SQL on every core: the one CPU-bound step of a cold compile.

sqlglot's parser holds the GIL, so threads do not help; forked processes do. Each worker parses
a share of the rendered queries and sends back only what the compiler keeps of a parse (the
bare table names a query reads, and the normalized digest a fingerprint hashes), never syntax
trees. A query that fails to parse comes back as None and is parsed again by the compiler
itself, which reports the error with its location.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING

from . import sql

if TYPE_CHECKING:
    from concurrent.futures import Future, ProcessPoolExecutor

# Below this many queries, starting processes costs more than the parallel parse saves (measured
# in docs/benchmarks.md: a worker costs ~20 ms to fork, a query ~0.3 ms to parse).
MIN_QUERIES = 300
MAX_WORKERS = 4


def available() -> bool:
    """Whether parsing in parallel can help here: several cores, and fork() to share what is
    loaded (Linux; macOS's system libraries are not fork-safe)."""
    return sys.platform.startswith("linux") and (os.cpu_count() or 1) > 1


# What the compiler keeps of a parse: the bare table names a query reads, and with `digests` its
# normalized digest (sql.normalized_digest).
Parsed = tuple[list[str], "str | None"]


def parse_many(
    queries: Sequence[tuple[str, str]],
    *,
    digests: bool = False,
) -> list[Parsed | None]:
    """For each (sql, dialect): what it parses to (see Parsed), or None where it is not exactly
    one query that parses. Parsed on up to MAX_WORKERS processes."""
    workers = min(os.cpu_count() or 1, MAX_WORKERS)
    # Several chunks per worker, so that a slow chunk does not leave the other cores idle.
    size = max(1, -(-len(queries) // (workers * 4)))
    chunks = [list(queries[i : i + size]) for i in range(0, len(queries), size)]
    with _forking_pool(workers, {dialect for _, dialect in queries}) as pool:
        results = pool.map(_parse_chunk, chunks, [digests] * len(chunks))
        return [parsed for chunk in results for parsed in chunk]


class EarlyParse:
    """Parses queries on the other cores while the caller goes on producing them.

    The loader hands over each new model's SQL as it reads the model (with placeholder relation
    names: the real ones are known only once every model is loaded), so that a cold compile
    parses while it loads instead of after. Nothing starts before MIN_QUERIES queries came in:
    a load that found few new models costs no process.
    """

    CHUNK = 100
    # Chunks handed to each worker ahead of time. A chunk handed over cannot be taken back, so the
    # caller finds the rest still here when it comes to parse them itself (results()).
    AHEAD = 2

    def __init__(self, dialect: str, *, normalize: bool = False) -> None:
        """With `normalize`, each result's second part is the query as sqlglot writes it back
        (no comments), placeholders included, from which a fingerprint's digest is made."""
        self.dialect = dialect
        self._mode = TEXT if normalize else None
        self._buffer: list[tuple[str, str]] = []  # (key, sql) not yet a chunk
        self._chunks: list[tuple[list[str], list[tuple[str, str]]]] = []  # (keys, queries)
        self._parsed: dict[int, list[Parsed | None]] = {}  # chunk index -> parsed by the caller
        self._futures: dict[int, Future[list[Parsed | None]]] = {}  # chunk index -> sent to a worker
        # Chunks [_next, _end) wait: workers are fed from the front, the caller takes from the back.
        self._next = self._end = self._done = 0
        self._lock = threading.RLock()  # a done callback can run in the thread that submits
        self._pool: ProcessPoolExecutor | None = None
        self._workers = 0
        self._count = 0
        self._results: dict[str, Parsed | None] | None = None

    def add(self, key: str, sql: str) -> None:
        self._buffer.append((key, sql))
        self._count += 1
        if self._count >= MIN_QUERIES and len(self._buffer) >= self.CHUNK:
            self._send()

    def results(self) -> dict[str, Parsed | None]:
        """What each key's query parsed to (see Parsed); keys given too few to be worth a pool
        are absent. Parses the chunks no worker was given here, waits for the others, then stops
        the workers."""
        if self._results is None:
            if self._count >= MIN_QUERIES:
                self._send()
            try:
                while True:  # the caller has nothing else to do: it parses from the back
                    with self._lock:
                        if self._next >= self._end:
                            break
                        self._end -= 1
                        index = self._end
                    self._parsed[index] = _parse_chunk(self._chunks[index][1], self._mode)
                self._results = {
                    key: result
                    for index, (keys, _) in enumerate(self._chunks)
                    for key, result in zip(keys, self._chunk_result(index), strict=True)
                }
            finally:
                self.close()
        return self._results

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        self._buffer.clear()

    def _chunk_result(self, index: int) -> list[Parsed | None]:
        return self._parsed[index] if index in self._parsed else self._futures[index].result()

    def _send(self) -> None:
        if not self._buffer or not available():
            return
        if self._pool is None:
            # One core is the loader's: the others parse.
            self._workers = max(1, min((os.cpu_count() or 1) - 1, MAX_WORKERS))
            self._pool = _forking_pool(self._workers, {self.dialect})
        # In chunks of CHUNK: the first send comes with MIN_QUERIES queries at once.
        for start in range(0, len(self._buffer), self.CHUNK):
            part = self._buffer[start : start + self.CHUNK]
            self._chunks.append(([key for key, _ in part], [(sql, self.dialect) for _, sql in part]))
        self._buffer = []
        with self._lock:
            self._end = len(self._chunks)
        self._feed()

    def _feed(self, finished: Future[list[Parsed | None]] | None = None) -> None:
        """Give the workers chunks up to AHEAD each; also called as each chunk comes back."""
        with self._lock:
            if finished is not None:
                self._done += 1
            pool = self._pool
            while (
                pool is not None
                and self._next < self._end
                and len(self._futures) - self._done < self._workers * self.AHEAD
            ):
                index = self._next
                self._next += 1
                try:
                    future = pool.submit(_parse_chunk, self._chunks[index][1], self._mode)
                except RuntimeError:  # the pool is shutting down: the caller parses it
                    self._next -= 1
                    break
                self._futures[index] = future
                future.add_done_callback(self._feed)


def _forking_pool(workers: int, dialects: set[str]) -> ProcessPoolExecutor:
    # Imported here: a command that parses nothing (an unchanged compile) skips their ~13 ms.
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    # sqlglot is imported on first use (lazy.py): here, once, rather than in every worker.
    for dialect in dialects:
        sql.dialect(dialect)
    # Output still buffered here would be written a second time by every worker that exits.
    sys.stdout.flush()
    sys.stderr.flush()
    context = multiprocessing.get_context("fork")
    return ProcessPoolExecutor(workers, mp_context=context, initializer=_ignore_interrupts)


def _ignore_interrupts() -> None:
    # Ctrl-C reaches the whole process group: the parent handles it, and the pool's shutdown ends
    # the workers, which must not print tracebacks of their own.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


TEXT = "text"  # a mode of _parse: the normalized text itself rather than its digest


def _parse_chunk(chunk: list[tuple[str, str]], digests: bool | str | None) -> list[Parsed | None]:
    return [_parse(text, dialect, digests) for text, dialect in chunk]


def _parse(text: str, dialect: str, digests: bool | str | None) -> Parsed | None:
    try:
        query = sql.parse(text, dialect)
    except Exception:  # a syntax error, or sqlglot failing: the compiler parses it again and says which
        return None
    tables = [table.name for table in sql.referenced_tables(query) if not table.db]
    if digests == TEXT:
        return tables, sql.normalized_text(query, dialect)
    return tables, sql.normalized_digest(query, dialect) if digests else None
