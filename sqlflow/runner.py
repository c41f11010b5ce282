"""The scheduler: run each node as soon as its parents are done, on a pool of threads.

A node whose parent failed is skipped, and so are its descendants; everything else still runs
unless `fail_fast`. Ready nodes are started longest-remaining-path first, so the critical path
never waits behind short branches. On Ctrl-C no new node starts, running statements are
cancelled, and the results gathered so far are returned with `interrupted` set.
"""

from __future__ import annotations

import heapq
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .plan import Plan


@dataclass
class NodeResult:
    unique_id: str
    status: str  # success | error | skipped (tests: pass | fail | warn)
    message: str = ""
    rows: int | None = None
    execution_time: float = 0.0
    started_at: str | None = None
    completed_at: str | None = None
    thread_id: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def failed(self) -> bool:
        return self.status in ("error", "fail")


@dataclass
class RunOutcome:
    results: list[NodeResult]
    elapsed: float
    interrupted: bool = False

    @property
    def failed(self) -> bool:
        return any(r.failed for r in self.results)


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")


def run_dag(
    plan: Plan,
    work: Callable[[str], NodeResult],
    *,
    threads: int,
    fail_fast: bool = False,
    on_skip: Callable[[NodeResult], None] | None = None,
    on_interrupt: Callable[[], None] | None = None,
    cancel: threading.Event | None = None,
) -> RunOutcome:
    """Run `work` for every node of `plan` (edges parent -> child) in dependency order.

    Stops starting nodes when `cancel` is set or on KeyboardInterrupt; then `on_interrupt` is
    called until every node in flight has returned (a cancel can land between two statements
    and be lost, so it is repeated).
    """
    started = time.perf_counter()
    cancel = cancel or threading.Event()
    remaining = {uid: len(plan.parents(uid)) for uid in plan}
    topological = plan.topological()
    priority = _critical_path_lengths(plan, topological)
    order = {uid: i for i, uid in enumerate(topological)}
    ready = [(-priority[uid], order[uid], uid) for uid, count in remaining.items() if count == 0]
    heapq.heapify(ready)
    results: dict[str, NodeResult] = {}
    # Maintained by the workers themselves, so an interrupt anywhere in this loop (even inside
    # pool.submit) cannot lose track of a node that is running.
    lock = threading.Lock()
    in_flight: set[str] = set()
    # Not a SimpleQueue: on CPython 3.11 its get(timeout=...) blocks forever when a signal lands
    # near the deadline, and the main thread, waiting here, never saw the Ctrl-C's cancel.
    finished: queue.Queue[NodeResult] = queue.Queue()
    submitted = reported = 0
    interrupted = stopped = False

    def tracked(uid: str) -> None:
        with lock:
            in_flight.add(uid)
        try:
            if cancel.is_set():
                result = NodeResult(uid, "skipped", "not started: the run was interrupted")
            else:
                result = work(uid)
        except BaseException as exc:  # a node's failure is a result; never leave it unreported
            result = NodeResult(uid, "error", f"{type(exc).__name__}: {exc}")
        with lock:
            in_flight.discard(uid)
        finished.put(result)

    def collect(timeout: float) -> bool:
        nonlocal reported
        try:
            result = finished.get(timeout=timeout)
        except queue.Empty:
            return False
        reported += 1
        record(result)
        return True

    def record(result: NodeResult) -> None:
        nonlocal stopped
        results[result.unique_id] = result
        if result.failed:
            for child in plan.descendants(result.unique_id):
                if child not in results:
                    results[child] = NodeResult(
                        child, "skipped", f"skipped: upstream {result.unique_id} failed"
                    )
                    if on_skip:
                        on_skip(results[child])
            stopped = stopped or fail_fast
        for child in plan.children(result.unique_id):
            remaining[child] -= 1
            if remaining[child] == 0 and child not in results:
                heapq.heappush(ready, (-priority[child], order[child], child))

    pool = ThreadPoolExecutor(max_workers=max(1, threads), thread_name_prefix="sqlflow")
    try:
        try:
            while not cancel.is_set():
                while ready and submitted - len(results) < threads and not stopped:
                    _, _, uid = heapq.heappop(ready)
                    if uid not in results:
                        submitted += 1
                        pool.submit(tracked, uid)
                if submitted == reported:
                    break
                collect(timeout=0.2)
        except KeyboardInterrupt:
            cancel.set()
        if cancel.is_set():
            interrupted = True
            while True:
                if on_interrupt:
                    on_interrupt()
                if not collect(timeout=0.2):
                    with lock:
                        if not in_flight and finished.empty():
                            break
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    while collect(timeout=0):
        pass
    for uid in plan:
        if uid not in results and (stopped or interrupted):
            reason = "not started: the run was interrupted" if interrupted else "skipped: --fail-fast"
            results[uid] = NodeResult(uid, "skipped", reason)
            if on_skip:
                on_skip(results[uid])
    ordered = [results[uid] for uid in order if uid in results]
    return RunOutcome(ordered, time.perf_counter() - started, interrupted)


def _critical_path_lengths(plan: Plan, topological: list[str]) -> dict[str, int]:
    lengths: dict[str, int] = {}
    for uid in reversed(topological):
        lengths[uid] = 1 + max((lengths[c] for c in plan.children(uid)), default=0)
    return lengths
