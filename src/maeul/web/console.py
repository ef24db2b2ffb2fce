"""The operator console: live map, decisions queue, alerts, KPI dashboard, audit log.

Every page needs a signed-in session. Reads and decisions go through the same core calls
and permission checks as the HTTP API (``Caller.require``, the decision engine's role and
reviewer rules): a reader sees the queue but never a decision form, and a decision posted
by someone who may not decide is refused by the engine, not just hidden by the page.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from ..hub.errors import BadRequestData, Forbidden, NgsiError, Unauthorized
from ..trust.audit import verify_store
from ..trust.decisions import DECIDE_ROLES
from .base import Web
from .i18n import translator
from .mapdata import LAYERS, MapData
from .session import Session

ACTIONS = ("approve", "reject", "modify", "rollback")
HISTORY_PAGE = 50
KPI_POINTS = 200


def _member(sess: Session) -> None:
    """Console reads need a key or account that may read the session's tenant."""
    if sess.caller.anonymous:
        raise Unauthorized("sign in to use the console")
    sess.caller.require(sess.tenant, "read")


class Console:
    def __init__(self, web: Web, mapdata: MapData | None = None) -> None:
        self.w = web
        self.s = web.s
        self.mapdata = mapdata

    # -- map ---------------------------------------------------------------------------------
    async def map(self, request: Request) -> Response:
        sess = self.w.session(request)
        assert sess is not None
        _member(sess)
        t = translator(self.w.lang(request))
        layers = [{"key": k, "label": t(f"layer.{k}")} for k in LAYERS]
        # the page preloads this exact URL, so the data travels while the scripts load
        layers_url = "/web/points.json?layers=" + ",".join(LAYERS)
        resp = self.w.render(request, "console/map.html", layers=layers, layers_url=layers_url,
                             labels={"hidden": t("map.hidden"), "needs": t("map.needs"),
                                     "history": t("map.history"), "loading": t("map.loading"),
                                     "observed": t("map.observed"), "none": t("map.none"),
                                     "notfound": t("map.notfound"),
                                     "attr": t("map.attr"), "value": t("map.value"),
                                     "more": t("map.more")})
        if self.mapdata is not None:
            # read the map's points while the browser parses the page: its preload of them
            # then waits for this read (one per view) instead of starting its own
            resp.background = BackgroundTask(self._warm, sess)
        return resp

    def _warm(self, sess: Session) -> None:
        assert self.mapdata is not None
        try:
            self.mapdata.snapshot(sess.tenant, sess.caller)
        except NgsiError:
            pass  # the page's own request for the points reports it

    # -- decisions -----------------------------------------------------------------------------
    def _lists(self, sess: Session, offset: int) -> dict[str, Any]:
        """The queue (every pending proposal) and one page of the whole history."""
        d = self.s.trust.decisions
        pending = d.list_proposals(sess.tenant, "pending", None, 1000, 0)
        page = d.list_proposals(sess.tenant, None, None, HISTORY_PAGE, offset)
        return {"pending": pending["items"], "history": page["items"],
                "history_total": page["total"], "offset": offset, "page": HISTORY_PAGE}

    async def decisions(self, request: Request) -> Response:
        sess = self.w.session(request)
        assert sess is not None
        _member(sess)
        try:
            offset = max(0, int(request.query_params.get("offset", "0")))
        except ValueError:
            raise BadRequestData("offset must be a whole number") from None
        data = await run_in_threadpool(self._lists, sess, offset)
        # htmx polls the queue: answer with the fragment only
        fragment = request.headers.get("hx-request") == "true"
        return self.w.render(request, "console/decisions.html", fragment=fragment, **data)

    def can_decide(self, sess: Session) -> bool:
        return sess.caller.role in DECIDE_ROLES and sess.caller.tenant in (None, sess.tenant)

    async def proposal(self, request: Request, error: NgsiError | None = None,
                       status: int = 200, form: dict[str, str] | None = None) -> Response:
        sess = self.w.session(request)
        assert sess is not None
        _member(sess)
        pid = request.path_params["pid"]
        doc = await run_in_threadpool(self.s.trust.decisions.get, sess.tenant, pid)
        done = request.query_params.get("done")
        t = translator(self.w.lang(request))
        action_text = orjson.dumps(doc["action"], option=orjson.OPT_INDENT_2).decode()
        return self.w.render(
            request, "console/proposal.html", status=status, p=doc,
            can_decide=self.can_decide(sess) and doc["status"] == "pending",
            can_rollback=self.can_decide(sess) and doc["status"] == "applied",
            own=doc["submittedBy"] == sess.caller.actor,
            action_text=(form or {}).get("action", action_text),
            reason_text=(form or {}).get("reason", ""),
            pretty=lambda v: orjson.dumps(v, option=orjson.OPT_INDENT_2).decode(),
            error=error.detail if error else None,
            notice=t(f"decision.done.{done}") if done in ACTIONS else None)

    async def decide(self, request: Request, sess: Session, form: dict[str, str]) -> Response:
        pid = request.path_params["pid"]
        action = request.path_params["action"]
        if action not in ACTIONS:
            raise BadRequestData(f"action: one of {', '.join(ACTIONS)}")
        d = self.s.trust.decisions
        reason = form.get("reason", "").strip() or None
        caller = sess.caller
        try:
            if caller.tenant is not None and caller.tenant != sess.tenant:
                raise Forbidden(f"this account is not valid for tenant {sess.tenant!r}")
            if action == "approve":
                await run_in_threadpool(d.approve, sess.tenant, pid, caller, reason)
            elif action == "reject":
                await run_in_threadpool(d.reject, sess.tenant, pid, caller, reason)
            elif action == "rollback":
                await run_in_threadpool(d.rollback, sess.tenant, pid, caller, reason)
            else:
                try:
                    new_action = orjson.loads(form.get("action", ""))
                except orjson.JSONDecodeError as exc:
                    raise BadRequestData(f"action: not valid JSON ({exc})") from None
                body: dict[str, Any] = {"action": new_action, "reason": reason,
                                        "approve": form.get("approve") == "on"}
                if reason is None:
                    del body["reason"]
                await run_in_threadpool(d.modify, sess.tenant, pid, caller, body)
        except NgsiError as err:
            return await self.proposal(request, error=err, status=err.status, form=form)
        return self.w.redirect(f"/console/decisions/{pid}?done={action}")

    # -- alerts ------------------------------------------------------------------------------
    def _alerts(self, sess: Session) -> dict[str, Any]:
        d = self.s.trust.decisions
        pending = d.list_proposals(sess.tenant, "pending", None, 1000, 0)["items"]
        failed = [p for p in d.list_proposals(sess.tenant, None, None, 200, 0)["items"]
                  if p["status"] in ("failed", "expired")]
        kpis = [k for k in self.s.trust.kpis.latest(sess.tenant, False)
                if k["status"] == "notMet"]
        return {"pending": pending, "failed": failed, "kpis": kpis}

    async def alerts(self, request: Request) -> Response:
        sess = self.w.session(request)
        assert sess is not None
        _member(sess)
        data = await run_in_threadpool(self._alerts, sess)
        fragment = request.headers.get("hx-request") == "true"
        return self.w.render(request, "console/alerts.html", fragment=fragment, **data)

    # -- KPIs --------------------------------------------------------------------------------
    def _kpis(self, sess: Session) -> list[dict[str, Any]]:
        k = self.s.trust.kpis
        out = []
        for item in k.latest(sess.tenant, False):
            pts = k.history(sess.tenant, item["id"], None, None, KPI_POINTS)
            out.append({**item, "points": [[p["at"], p["value"]] for p in pts]})
        return out

    async def kpis(self, request: Request) -> Response:
        sess = self.w.session(request)
        assert sess is not None
        _member(sess)
        items = await run_in_threadpool(self._kpis, sess)
        return self.w.render(request, "console/kpis.html", kpis=items)

    # -- audit -------------------------------------------------------------------------------
    async def audit(self, request: Request, result: dict[str, Any] | None = None,
                    status: int = 200) -> Response:
        sess = self.w.session(request)
        assert sess is not None
        sess.caller.require(sess.tenant, "admin")
        try:
            limit = min(1000, max(1, int(request.query_params.get("limit", "200"))))
        except ValueError:
            raise BadRequestData("limit must be a whole number") from None
        recs = await run_in_threadpool(self.s.store.audit_log, sess.tenant, limit)
        return self.w.render(request, "console/audit.html", status=status, records=recs,
                             limit=limit, result=result)

    async def verify(self, request: Request, sess: Session, form: dict[str, str]) -> Response:
        sess.caller.require(sess.tenant, "admin")
        res = await run_in_threadpool(verify_store, self.s.store)
        return await self.audit(request, result={**res.as_dict(), "message": res.message()},
                                status=200 if res.ok else 409)
