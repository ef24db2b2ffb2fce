"""The trust layer's composition root, built by ``maeul.hub.app.Services``."""

from __future__ import annotations

from typing import Any

from starlette.routing import BaseRoute

from .audit import Sealer
from .decisions import Decisions
from .impact import Impact
from .jobs import Job, Scheduler
from .kpi import Kpis
from .privacy import Privacy
from .registry import Registry

API_MODULES = ("audit", "registry", "impact", "decisions", "privacy", "kpi")


class Trust:
    """Registry, impact assessment, decisions, privacy, KPIs and the audit sealer."""

    def __init__(self, services: Any) -> None:
        settings = services.settings
        self.privacy = Privacy(services)
        self.registry = Registry(services)
        self.impact = Impact(services)
        self.decisions = Decisions(services)
        self.kpis = Kpis(services)
        self.sealer = Sealer(services.store, settings.audit_seal_interval_s)
        jobs: list[Job] = []
        for part in (self.privacy, self.registry, self.impact, self.decisions, self.kpis):
            jobs.extend(part.jobs())
        self.scheduler = Scheduler(jobs)
        self.run_jobs = settings.trust_jobs

    def start(self) -> None:
        if self.run_jobs:
            self.sealer.start()
            self.scheduler.start()

    def stop(self) -> None:
        self.scheduler.stop()
        self.sealer.stop()


def trust_routes(services: Any) -> list[BaseRoute]:
    import importlib

    out: list[BaseRoute] = []
    for name in API_MODULES:
        mod = importlib.import_module(f"maeul.trust.{name}_api")
        out.extend(mod.routes(services))
    return out
