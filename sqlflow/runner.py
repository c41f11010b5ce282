"""The scheduler: run each node as soon as its parents are done, on a pool of threads.

A node whose parent failed is skipped, and so are its descendants; everything else still runs
unless `fail_fast`. Ready nodes are started longest-remaining-path first, so the critical path
never waits behind short branches. On Ctrl-C no new node starts, running statements are
cancelled, and the results gathered so far are returned with `interrupted` set.
"""

from __future__ import annotations

import heapq
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import networkx as nx


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
    plan: nx.DiGraph,
    work: Callable[[str], NodeResult],
    *,
    threads: int,
    fail_fast: bool = False,
    on_skip: Callable[[NodeResult], None] | None = None,
    on_interrupt: Callable[[], None] | None = None,
) -> RunOutcome:
    """Run `work` for every node of `plan` (edges parent -> child) in dependency order."""
    started = time.perf_counter()
    remaining = {uid: plan.in_degree(uid) for uid in plan}
    priority = _critical_path_lengths(plan)
    order = {uid: i for i, uid in enumerate(nx.lexicographical_topological_sort(plan))}
    ready: list[tuple[int, int, str]] = []
    for uid, count in remaining.items():
        if count == 0:
            heapq.heappush(ready, (-priority[uid], order[uid], uid))
    results: dict[str, NodeResult] = {}
    running: dict[Future[NodeResult], str] = {}
    stop = threading.Event()
    interrupted = False

    def skip_descendants(uid: str, reason: str) -> None:
        for child in nx.descendants(plan, uid):
            if child not in results:
                results[child] = NodeResult(child, "skipped", reason)
                if on_skip:
                    on_skip(results[child])

    with ThreadPoolExecutor(max_workers=max(1, threads), thread_name_prefix="sqlflow") as pool:
        try:
            while ready or running:
                while ready and len(running) < threads and not stop.is_set():
                    _, _, uid = heapq.heappop(ready)
                    if uid in results:  # skipped meanwhile
                        continue
                    running[pool.submit(work, uid)] = uid
                if not running:
                    break
                done, _ = wait(running, timeout=0.2, return_when=FIRST_COMPLETED)
                for future in done:
                    uid = running.pop(future)
                    result = future.result()
                    results[uid] = result
                    if result.failed:
                        skip_descendants(uid, f"skipped: upstream {uid} failed")
                        if fail_fast:
                            stop.set()
                    for child in plan.successors(uid):
                        remaining[child] -= 1
                        if remaining[child] == 0 and child not in results:
                            heapq.heappush(ready, (-priority[child], order[child], child))
                if stop.is_set() and not running:
                    break
        except KeyboardInterrupt:
            interrupted = True
            stop.set()
            if on_interrupt:
                on_interrupt()
            for future, uid in list(running.items()):
                try:
                    results[uid] = future.result()
                except Exception as exc:
                    results[uid] = NodeResult(uid, "error", f"cancelled: {exc}")
    for uid in plan:
        if uid not in results and (stop.is_set() or interrupted):
            reason = "not started: the run was interrupted" if interrupted else "skipped: --fail-fast"
            results[uid] = NodeResult(uid, "skipped", reason)
            if on_skip:
                on_skip(results[uid])
    ordered = [results[uid] for uid in order if uid in results]
    return RunOutcome(ordered, time.perf_counter() - started, interrupted)


def _critical_path_lengths(plan: nx.DiGraph) -> dict[str, int]:
    lengths: dict[str, int] = {}
    for uid in reversed(list(nx.topological_sort(plan))):
        lengths[uid] = 1 + max((lengths[c] for c in plan.successors(uid)), default=0)
    return lengths
