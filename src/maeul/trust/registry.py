"""Trust layer: the AI registry (Algorithmic Transparency Standard v0.3.1).

Storage contract (other components rely on it): an entry is a JSON document in the store's
kv table, kind ``registry``, keyed by (tenant, entry id); its ``status`` field holds the
lifecycle status (planned ... operational, retired).
"""

from __future__ import annotations

from typing import Any

from .jobs import Job

KIND = "registry"


class Registry:
    """Built once per process by ``maeul.trust.app.Trust``."""

    def __init__(self, services: Any) -> None:
        self.s = services

    def get(self, tenant: str, entry_id: str) -> dict[str, Any] | None:
        """The stored entry, or None."""
        return self.s.store.reader().get_json(KIND, tenant, entry_id)  # type: ignore[no-any-return]

    def jobs(self) -> list[Job]:
        return []
