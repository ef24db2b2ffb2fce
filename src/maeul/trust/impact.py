"""Trust layer: algorithmic impact assessment (scored the way Canada's AIA scores).

Storage contract (other components rely on it): a system's current assessment is a JSON
document in kv, kind ``assessment``, keyed by (tenant, system id), with at least ``level``
(1-4). ``Impact.oversight`` turns it into what the decision engine must enforce.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .jobs import Job

KIND = "assessment"


@dataclass(frozen=True)
class Oversight:
    """What the decision engine enforces for one system."""

    level: int | None  # None: not assessed yet
    auto_apply: bool  # levels I-II: may act automatically (monitoring and override)
    reviewers: int  # distinct human approvals needed before applying (0 when auto)
    obligations: list[str] = field(default_factory=list)


def oversight_for(level: int | None) -> Oversight:
    """Levels I-II act automatically; III needs one human approval, IV two reviewers.

    A system that has not been assessed is treated like level III: nothing applies without
    a human approval until the assessment is done.
    """
    if level in (1, 2):
        return Oversight(level, True, 0, ["monitoring", "human override"])
    if level == 4:
        return Oversight(level, False, 2, ["human approval of every decision", "two reviewers"])
    return Oversight(level, False, 1, ["human approval of every decision"])


class Impact:
    """Built once per process by ``maeul.trust.app.Trust``."""

    def __init__(self, services: Any) -> None:
        self.s = services

    def oversight(self, tenant: str, system_id: str) -> Oversight:
        doc = self.s.store.reader().get_json(KIND, tenant, system_id)
        return oversight_for(int(doc["level"]) if doc and doc.get("level") else None)

    def jobs(self) -> list[Job]:
        return []
