"""Sign-in and sign-out: an operator's username and password, or one of the hub's API keys.

A key signs in as itself: the session carries that key's role, tenant and purposes (and
ends when the key is revoked or expires). A key valid for every tenant, or an account
without a tenant, works in the tenant named on the form (``default`` when empty).
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from ..hub.auth import Caller
from ..hub.errors import NgsiError, Unauthorized
from ..hub.http import DEFAULT_TENANT
from .base import Web, safe_next
from .i18n import LANG_COOKIE, LANGS, translator
from .session import COOKIE


class SignIn:
    def __init__(self, web: Web) -> None:
        self.w = web

    async def form_page(self, request: Request) -> Response:
        nxt = safe_next(request.query_params.get("next"))
        return self.w.render(request, "signin.html", next=nxt, method="password",
                             username="", tenant="")

    def _verify(self, data: dict[str, str]) -> tuple[str, Caller] | None:
        users = self.w.sessions.users
        if data.get("method") == "key":
            try:
                caller = self.w.s.keys.verify(data.get("key", "").strip() or None)
            except Unauthorized:
                return None
            if caller.anonymous:
                return None
            return caller.actor, caller
        found = users.verify(data.get("username", "").strip(), data.get("password", ""))
        return None if found is None else (found.actor, found)

    async def submit(self, request: Request) -> Response:
        t = translator(self.w.lang(request))
        data = await self.w.form(request)
        nxt = safe_next(data.get("next"))
        tenant = data.get("tenant", "").strip() or DEFAULT_TENANT

        def again(message: str, status: int) -> Response:
            return self.w.render(request, "signin.html", status=status, next=nxt,
                                 method=data.get("method", "password"),
                                 username=data.get("username", ""),
                                 tenant=data.get("tenant", ""), error=message)

        if not self.w.same_origin(request):
            return again(t("error.csrf"), 403)
        found = await run_in_threadpool(self._verify, data)
        if found is None:
            return again(t("signin.failed"), 401)
        actor, caller = found
        try:
            if len(tenant) > 64 or not all(c.isalnum() or c in "-_." for c in tenant):
                return again(t("signin.bad_tenant"), 400)
            if caller.tenant is not None:
                tenant = caller.tenant if not data.get("tenant", "").strip() else tenant
            caller.require(tenant, "read")
        except NgsiError:
            return again(t("signin.wrong_tenant"), 403)
        cookie, _sess = await run_in_threadpool(self.w.sessions.create, actor, caller, tenant)
        resp = self.w.redirect(nxt)
        resp.set_cookie(COOKIE, cookie, max_age=int(self.w.sessions.ttl_s), httponly=True,
                        samesite="strict", secure=request.url.scheme == "https", path="/")
        return resp

    async def signout(self, request: Request) -> Response:
        sess = await run_in_threadpool(self.w.session, request)
        if sess is not None:
            data = await self.w.form(request)
            if not self.w.sessions.csrf_ok(sess, data.get("csrf")):
                t = translator(self.w.lang(request))
                return self.w.render(request, "error.html", status=403, status_code=403,
                                     error=t("error.csrf"))
            await run_in_threadpool(self.w.sessions.end, sess)
        resp = self.w.redirect("/signin")
        resp.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
        return resp

    async def language(self, request: Request) -> Response:
        """Remember the chosen language for a year and go back to the page."""
        code = request.path_params["code"]
        nxt = safe_next(request.query_params.get("next"), "/portal")
        if code not in LANGS:
            t = translator(self.w.lang(request))
            return self.w.render(request, "error.html", status=400, status_code=400,
                                 error=t("error.lang"))
        resp = self.w.redirect(nxt)
        resp.set_cookie(LANG_COOKIE, code, max_age=365 * 86400, samesite="lax", path="/")
        return resp
