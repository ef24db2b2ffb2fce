"""Trust layer: public KPIs: definitions as data, scheduled computation, history, reports."""

from __future__ import annotations

from typing import Any

from .jobs import Job


class Kpis:
    """Built once per process by ``maeul.trust.app.Trust``."""

    def __init__(self, services: Any) -> None:
        self.s = services

    def jobs(self) -> list[Job]:
        return []
