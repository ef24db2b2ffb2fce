"""Wires the AI services that run inside the hub process and collects their routes."""

from __future__ import annotations

from typing import Any

from starlette.routing import BaseRoute


def service_routes(services: Any) -> list[BaseRoute]:
    """Build each in-process service once (``services.care``), add its scheduled jobs to the
    trust layer's scheduler, and return its HTTP routes."""
    from .care.api import routes as care_routes
    from .care.service import CareService
    from .civic.api import routes as civic_routes
    from .civic.service import CivicService

    services.care = CareService(services)
    services.trust.scheduler.jobs.extend(services.care.jobs())
    services.civic = CivicService(services)
    return care_routes(services) + civic_routes(services)
