"""The citizen portal: AI registry, public KPIs and quarterly reports, open data.

Anonymous pages, in Korean or English, large text, keyboard- and phone-friendly. They read
the same public views the ``/public/v1`` API serves (published registry entries, public
KPIs, public entity types). Reporting a problem, tracking it and asking a question are in
``citizen.py``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from ..hub.http import tenant_of
from .base import Web
from .opendata import FORMATS, OpenData

KPI_POINTS = 200
# fields of a registry entry shown to citizens, grouped as the standard groups them
REGISTRY_SECTIONS = [
    ("basic", ["organization", "department", "description", "website", "status",
               "publication_date", "last_change_date", "contact_email"]),
    ("use", ["goal", "decision_making_process", "impact", "risks", "risk_category",
             "proportionality", "lawful_basis"]),
    ("data", ["source_data", "training_data", "data_bias", "connected_data_sources",
              "DPIA_description"]),
    ("algorithm", ["algorithm_type", "methods_and_models", "performance",
                   "alternatives_considered", "AIA_description"]),
    ("oversight", ["type", "human_intervention", "monitoring", "objection_procedure",
                   "rollback"]),
]


def quarters(now: datetime | None = None, n: int = 4) -> list[str]:
    """The current quarter and the ``n - 1`` before it, newest first (``2026Q3``)."""
    now = now or datetime.now(UTC)
    year, q = now.year, (now.month - 1) // 3 + 1
    out = []
    for _ in range(n):
        out.append(f"{year}Q{q}")
        q -= 1
        if q == 0:
            year, q = year - 1, 4
    return out


class Portal:
    def __init__(self, web: Web) -> None:
        self.w = web
        self.s = web.s
        self.data = OpenData(web.s)

    async def home(self, request: Request) -> Response:
        return self.w.render(request, "portal/home.html")

    async def registry(self, request: Request) -> Response:
        lang = self.w.lang(request)
        entries = await run_in_threadpool(self.s.trust.registry.public_list,
                                          tenant_of(request), lang)
        return self.w.render(request, "portal/registry.html", entries=entries)

    async def registry_entry(self, request: Request) -> Response:
        lang = self.w.lang(request)
        entry = await run_in_threadpool(self.s.trust.registry.public_get, tenant_of(request),
                                        request.path_params["id"], lang)
        return self.w.render(request, "portal/registry_entry.html", e=entry,
                             sections=REGISTRY_SECTIONS, text=_text)

    def _kpis(self, tenant: str) -> list[dict[str, Any]]:
        k = self.s.trust.kpis
        out = []
        for item in k.latest(tenant, True):
            pts = k.history(tenant, item["id"], None, None, KPI_POINTS)
            out.append({**item, "points": [[p["at"], p["value"]] for p in pts]})
        return out

    async def kpis(self, request: Request) -> Response:
        items = await run_in_threadpool(self._kpis, tenant_of(request))
        return self.w.render(request, "portal/kpis.html", kpis=items, quarters=quarters())

    async def open_data(self, request: Request) -> Response:
        cat = await run_in_threadpool(self.data.catalogue, tenant_of(request))
        return self.w.render(request, "portal/data.html", catalogue=cat, formats=list(FORMATS))

    async def download(self, request: Request) -> Response:
        name = request.path_params["name"]
        fmt = request.path_params["fmt"]
        body, media = await run_in_threadpool(self.data.export, tenant_of(request), name, fmt)
        safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in name)
        return Response(body, media_type=media, headers={
            "Content-Disposition": f'attachment; filename="{safe}.{fmt}"',
            "X-Content-Type-Options": "nosniff"})


def _text(v: Any) -> str:
    """A registry value as text: performance records and lists become short lines."""
    if v is None:
        return ""
    if isinstance(v, list):
        return "; ".join(_text(x) for x in v)
    if isinstance(v, dict):
        return ", ".join(f"{k}: {_text(x)}" for k, x in v.items() if x not in (None, ""))
    return str(v)
