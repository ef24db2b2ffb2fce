"""Trust layer: algorithmic impact assessment (scored the way Canada's AIA scores)."""

from __future__ import annotations

from typing import Any

from .jobs import Job


class Impact:
    """Built once per process by ``maeul.trust.app.Trust``."""

    def __init__(self, services: Any) -> None:
        self.s = services

    def jobs(self) -> list[Job]:
        return []
