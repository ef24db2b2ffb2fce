"""What every web page shares: templates, language, the signed-in session, forms, CSRF.

Pages are rendered on the server (Jinja2, autoescaped); JavaScript only enhances them.
Who a request acts as: the session's caller when signed in, else the hub's own rule
(an API key header, or anonymous), so the console never grants more than the API would.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote

import jinja2
import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from ..hub.auth import Caller
from ..hub.errors import BadRequestData, NgsiError
from ..hub.http import request_caller, tenant_of
from .i18n import LANG_COOKIE, LANGS, choose, pick, translator
from .session import COOKIE, Session, Sessions

log = logging.getLogger(__name__)
HERE = Path(__file__).parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"
MAX_FORM = 64 * 1024
Page = Callable[[Request], Awaitable[Response]]
SECURITY_HEADERS = {
    # scripts and styles come from /static only; inline data travels as JSON blocks
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
                               "style-src 'self'; script-src 'self'; object-src 'none'; "
                               "frame-ancestors 'none'; base-uri 'self'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}
NAV_CONSOLE = [("/console", "nav.map"), ("/console/decisions", "nav.decisions"),
               ("/console/alerts", "nav.alerts"), ("/console/kpis", "nav.kpis"),
               ("/console/audit", "nav.audit")]


class FormError(BadRequestData):
    """A form that cannot be read (wrong content type, too large, bad encoding)."""


def safe_next(target: str | None, default: str = "/console") -> str:
    """A local path to return to: never another site (``//host`` or ``https://...``)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    return target


class Web:
    """Shared by every page handler; built once per app by ``web_routes``."""

    def __init__(self, services: Any) -> None:
        self.s = services
        self.sessions = Sessions(services)
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(TEMPLATES),
            autoescape=jinja2.select_autoescape(["html"]),
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.filters["tojson_block"] = lambda v: orjson.dumps(v).decode().replace(
            "</", "<\\/")
        self.env.filters["short"] = short_name
        self.env.filters["when"] = lambda v: (str(v)[:19].replace("T", " ") if v else "")

    # -- who and which language -------------------------------------------------------------
    def session(self, request: Request) -> Session | None:
        if "web_session" not in request.scope:
            request.scope["web_session"] = self.sessions.load(request.cookies.get(COOKIE))
        found: Session | None = request.scope["web_session"]
        return found

    def caller(self, request: Request) -> Caller:
        sess = self.session(request)
        return sess.caller if sess is not None else request_caller(self.s, request)

    def tenant(self, request: Request) -> str:
        sess = self.session(request)
        return sess.tenant if sess is not None else tenant_of(request)

    @staticmethod
    def lang(request: Request) -> str:
        return choose(request.cookies.get(LANG_COOKIE), request.headers.get("accept-language"))

    # -- responses -------------------------------------------------------------------------
    def render(self, request: Request, template: str, status: int = 200,
               **ctx: Any) -> HTMLResponse:
        lang = self.lang(request)
        sess = self.session(request)
        page = {
            "lang": lang,
            "other_lang": next(x for x in LANGS if x != lang),
            "t": translator(lang),
            "pick": lambda v: pick(v, lang),
            "session": sess,
            "csrf": sess.csrf if sess else "",
            "path": request.url.path,
            "here": quote(request.url.path + (f"?{request.url.query}" if request.url.query
                                              else ""), safe="/"),
            "nav_console": NAV_CONSOLE,
            "fragment": False,
            "error": None,
            "notice": None,
        }
        page.update(ctx)
        html = self.env.get_template(template).render(page)
        return HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)

    @staticmethod
    def redirect(url: str) -> RedirectResponse:
        return RedirectResponse(url, status_code=303)

    def signin_redirect(self, request: Request) -> Response:
        here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        target = f"/signin?next={quote(here, safe='/')}"
        if request.headers.get("hx-request") == "true":
            # an htmx poll after the session ended: make the whole page go to sign-in
            return Response(status_code=204, headers={"HX-Redirect": target})
        return self.redirect(target)

    def error_page(self, request: Request, err: NgsiError) -> HTMLResponse:
        return self.render(request, "error.html", status=err.status, error=err.detail,
                           status_code=err.status)

    # -- forms -------------------------------------------------------------------------------
    @staticmethod
    async def form(request: Request) -> dict[str, str]:
        """An url-encoded form (the last value of each field)."""
        ctype = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
        if ctype != "application/x-www-form-urlencoded":
            raise FormError("the form must be sent as application/x-www-form-urlencoded")
        raw = b""
        async for chunk in request.stream():
            raw += chunk
            if len(raw) > MAX_FORM:
                raise FormError(f"the form is larger than {MAX_FORM} bytes")
        try:
            fields = parse_qs(raw.decode("utf-8"), keep_blank_values=True,
                              strict_parsing=False, max_num_fields=100)
        except (UnicodeDecodeError, ValueError) as exc:
            raise FormError(f"the form cannot be read: {exc}") from None
        return {k: v[-1] for k, v in fields.items()}

    @staticmethod
    def same_origin(request: Request) -> bool:
        """False when the browser says the request comes from another site."""
        origin = request.headers.get("origin")
        if origin is None or origin == "null":
            return origin is None
        # behind a reverse proxy the browser's host may arrive as X-Forwarded-Host
        hosts = {request.headers.get("host", "")}
        forwarded = request.headers.get("x-forwarded-host")
        if forwarded:
            hosts.add(forwarded.split(",")[0].strip())
        return origin.split("://", 1)[-1] in hosts

    def page(self, fn: Callable[[Request], Awaitable[Response]], *,
             signed_in: bool = False) -> Page:
        """A page handler: sign-in when asked for, hub errors shown as an error page."""

        async def handler(request: Request) -> Response:
            try:
                if signed_in:
                    sess = await run_in_threadpool(self.session, request)
                    if sess is None:
                        return self.signin_redirect(request)
                return await fn(request)
            except NgsiError as err:
                return self.error_page(request, err)

        return handler

    def checked_post(self, fn: Callable[[Request, Session, dict[str, str]], Awaitable[Response]]
                     ) -> Page:
        """A console form post: a live session, the same origin and its CSRF token."""

        async def handler(request: Request) -> Response:
            try:
                sess = await run_in_threadpool(self.session, request)
                if sess is None:
                    return self.signin_redirect(request)
                data = await self.form(request)
                if not self.same_origin(request) or not self.sessions.csrf_ok(
                        sess, data.get("csrf")):
                    return self.render(request, "error.html", status=403, status_code=403,
                                       error=translator(self.lang(request))("error.csrf"))
                return await fn(request, sess, data)
            except NgsiError as err:
                return self.error_page(request, err)

        return handler


@functools.lru_cache(maxsize=8192)
def short_name(iri: Any) -> str:
    """The last segment of a type or attribute IRI (``.../TrafficFlowObserved``)."""
    text = str(iri)
    for sep in ("#", "/", ":"):
        if sep in text:
            text = text.rsplit(sep, 1)[-1]
    return text
