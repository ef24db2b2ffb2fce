"""A small scheduler for the trust layer's periodic jobs (retention, KPIs, decisions, seal)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass
class Job:
    """``fn`` runs every ``interval_s`` seconds, the first time after ``first_s``."""

    name: str
    interval_s: float
    fn: Callable[[], object]
    first_s: float = 0.0


class Scheduler:
    """Runs jobs on one thread; a failing run is logged and retried at its next interval."""

    def __init__(self, jobs: list[Job]) -> None:
        self.jobs = jobs
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_error: dict[str, str] = {}
        self.runs: dict[str, int] = {}

    def start(self) -> None:
        if self._thread is None and self.jobs:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="trust-jobs", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        now = time.monotonic()
        due = {j.name: now + j.first_s for j in self.jobs}
        while not self._stop.is_set():
            now = time.monotonic()
            for job in self.jobs:
                if self._stop.is_set():
                    return
                if due[job.name] <= now:
                    due[job.name] = now + job.interval_s
                    try:
                        job.fn()
                        self.runs[job.name] = self.runs.get(job.name, 0) + 1
                        self.last_error.pop(job.name, None)
                    except Exception as exc:  # noqa: BLE001 - a job must not kill the others
                        self.last_error[job.name] = type(exc).__name__
                        log.exception("trust job %s failed", job.name)
            wait = min(due.values()) - time.monotonic()
            self._stop.wait(max(0.05, min(wait, 1.0)))

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None
