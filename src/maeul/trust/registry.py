"""Trust layer: the AI registry (Algorithmic Transparency Standard v0.3.1)."""

from __future__ import annotations

from typing import Any

from .jobs import Job


class Registry:
    """Built once per process by ``maeul.trust.app.Trust``."""

    def __init__(self, services: Any) -> None:
        self.s = services

    def jobs(self) -> list[Job]:
        return []
