"""Trust layer: privacy by design: attribute classes, pseudonyms, purposes, retention, PII."""

from __future__ import annotations

from typing import Any

from .jobs import Job


class Privacy:
    """Built once per process by ``maeul.trust.app.Trust``."""

    def __init__(self, services: Any) -> None:
        self.s = services

    def jobs(self) -> list[Job]:
        return []
