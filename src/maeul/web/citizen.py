"""The citizen portal's civic desk pages: report a problem, track a report, ask a question.

Anonymous pages that call the civic desk in-process (``services.civic``), exactly as the
Open311 and ``/civic/v1`` routes do, with the caller the hub would see (a signed-in session,
else an API key header, else anonymous):

- ``/portal/report``: the complaint text, an optional place (a click on the offline map, or
  the address in words) and an optional photo (checked and kept by the civic desk's own
  ``save_media``); the answer page shows the request id, the department, the expected date,
  a link to an earlier identical request, and, when the routing is unsure, the categories to
  choose from (the confirmation token travels only in that page's form, never in a URL).
- ``/portal/track`` and ``/portal/requests/{rid}``: status, department, dates, notes and the
  masked description of one request.
- ``/portal/ask``: a grounded answer with its sources, or a refusal that points to reporting.

Forms carry a CSRF token: the session's when signed in, else an HMAC of a random
``maeul_form`` cookie (HttpOnly, SameSite=Strict) under the web's session key. Errors from the
desk become messages on the form, which keeps what the citizen typed.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
import secrets
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import Response

from ..hub.errors import BadRequestData, NgsiError, ResourceNotFound
from .base import Web
from .i18n import pick, translator

FORM_COOKIE = "maeul_form"
MAX_TEXT = 10_000  # the desk's limit on a description (services/civic/requests.py)
MAX_QUESTION = 2000  # the desk's limit on a question (services/civic/answer.py)
MAX_ADDRESS = 500
EXTRA_BODY = 1024 * 1024  # room for the text fields beside the photo
_RID = re.compile(r"[0-9]{6}-[0-9A-Z]{6}")
NO_STORE = {"Cache-Control": "no-store"}


def normalise_id(raw: str) -> str:
    """A request id as people type or read it out: spaces dropped, capitals, the dash put
    back (``261123 k7p2qx`` -> ``261123-K7P2QX``); not checked here."""
    rid = "".join(raw.split()).upper().replace("–", "-").replace("—", "-")
    if len(rid) == 12 and "-" not in rid:
        rid = f"{rid[:6]}-{rid[6:]}"
    return rid


class Citizen:
    """Handlers of the report, track and ask pages."""

    def __init__(self, web: Web) -> None:
        self.w = web
        self.s = web.s

    # -- CSRF for anonymous forms -----------------------------------------------------------
    def _mac(self, raw: str) -> str:
        key = self.w.sessions.secret.get()
        return hmac.new(key, b"portal-form:" + raw.encode(), hashlib.sha256).hexdigest()

    def _token(self, request: Request) -> tuple[str, str | None]:
        """The form token and, when the browser has none yet, a new cookie value."""
        sess = self.w.session(request)
        if sess is not None:
            return sess.csrf, None
        raw = request.cookies.get(FORM_COOKIE) or ""
        if len(raw) == 32 and raw.replace("-", "").replace("_", "").isalnum():
            return self._mac(raw), None
        raw = secrets.token_urlsafe(24)
        return self._mac(raw), raw

    def _token_ok(self, request: Request, token: str | None) -> bool:
        if not self.w.same_origin(request) or not token:
            return False
        sess = self.w.session(request)
        if sess is not None:
            return self.w.sessions.csrf_ok(sess, token)
        raw = request.cookies.get(FORM_COOKIE)
        return bool(raw) and hmac.compare_digest(self._mac(raw or ""), token)

    def _page(self, request: Request, template: str, status: int = 200,
              **ctx: Any) -> Response:
        """A page with a form: its token, and the cookie behind it when new."""
        token, new = self._token(request)
        resp = self.w.render(request, template, status=status, csrf=token, **ctx)
        resp.headers.update(NO_STORE)
        if new is not None:
            resp.set_cookie(FORM_COOKIE, new, max_age=86400, httponly=True,
                            samesite="strict", secure=request.url.scheme == "https",
                            path="/portal")
        return resp

    def _csrf_failed(self, request: Request) -> Response:
        t = translator(self.w.lang(request))
        return self.w.render(request, "error.html", status=403, status_code=403,
                             error=t("error.csrf"))

    # -- names in the page's language ---------------------------------------------------------
    def _names(self, lang: str) -> dict[str, str]:
        return {s["service_code"]: s["service_name"] for s in self.s.civic.service_list(lang)}

    def _department(self, code: Any, lang: str) -> str:
        dept = self.s.civic.taxonomy().departments.get(code)
        return str(pick(dept.name, lang)) if dept is not None else str(code or "")

    def _category_department(self, code: Any) -> str | None:
        try:
            return str(self.s.civic.taxonomy().category(code).department)
        except (KeyError, ValueError):
            return None

    def _when(self, stamp: Any, with_time: bool = True) -> str:
        """A UTC stamp in the city's time zone (``2026-11-25 13:36``), or ``''``."""
        if not isinstance(stamp, str) or not stamp:
            return ""
        try:
            at = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
        except ValueError:
            return stamp
        if at.tzinfo is not None:
            at = at.astimezone(ZoneInfo(self.s.settings.city_timezone))
        return at.strftime("%Y-%m-%d %H:%M" if with_time else "%Y-%m-%d")

    # -- report a problem ---------------------------------------------------------------------
    async def report_form(self, request: Request) -> Response:
        return self._page(request, "portal/report.html", form=_blank_report())

    async def _read_report(self, request: Request) -> tuple[dict[str, str], bytes | None]:
        """The form fields and the photo (None when none was chosen)."""
        limit = self.s.settings.civic_media_max_bytes + EXTRA_BODY
        try:
            length = int(request.headers.get("content-length") or 0)
        except ValueError:
            length = 0
        if length > limit:
            raise _TooLarge()
        ctype = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
        if ctype not in ("multipart/form-data", "application/x-www-form-urlencoded"):
            raise BadRequestData("the form must be sent as multipart/form-data")
        form = await request.form(max_files=1, max_fields=20)
        try:
            fields: dict[str, str] = {}
            photo = None
            for k, v in form.multi_items():
                if isinstance(v, UploadFile):
                    if k != "media":
                        raise BadRequestData(f"{k}: only the photo field takes a file")
                    blob = await v.read(self.s.settings.civic_media_max_bytes + 1)
                    if blob or v.filename:
                        photo = blob
                else:
                    fields[k] = v
        finally:
            await form.close()
        return fields, photo

    async def report_submit(self, request: Request) -> Response:
        t = translator(self.w.lang(request))
        try:
            fields, photo = await self._read_report(request)
        except _TooLarge:
            mb = self.s.settings.civic_media_max_bytes / 1e6
            return self._page(request, "portal/report.html", status=413, form=_blank_report(),
                              error=t("report.err.too_large", mb=f"{mb:g}"))
        if not self._token_ok(request, fields.get("csrf")):
            return self._csrf_failed(request)
        form = {k: fields.get(k, "") for k in _blank_report()}

        def again(message: str, status: int = 400) -> Response:
            return self._page(request, "portal/report.html", status=status, form=form,
                              error=message)

        text = form["description"].strip()
        if not text:
            return again(t("report.err.empty"))
        if len(text) > MAX_TEXT:
            return again(t("report.err.long", n=f"{len(text):,}", max=f"{MAX_TEXT:,}"))
        if len(form["address_string"]) > MAX_ADDRESS:
            return again(t("report.err.address", max=MAX_ADDRESS))
        try:
            point = _point(form["lat"], form["long"])
        except ValueError:
            form["lat"] = form["long"] = ""
            return again(t("report.err.location"))
        data: dict[str, Any] = {"description": text}
        if form["address_string"].strip():
            data["address_string"] = form["address_string"].strip()
        if point:
            data["lat"], data["long"] = point
        caller = await run_in_threadpool(self.w.caller, request)
        tenant = self.w.tenant(request)
        try:
            if caller.anonymous:
                if not self.s.settings.civic_anonymous_reports:
                    return again(t("report.err.signin"), 403)
            else:
                caller.require(tenant, "write")
            from ..services.civic.requests import parse_request

            parse_request(data)  # before the photo is kept: a bad report keeps no file
            media_url = None
            if photo is not None:
                from ..services.civic.api import save_media

                base = self.s.settings.public_url or str(request.base_url)
                try:
                    media_url = await run_in_threadpool(save_media, self.s.settings, tenant,
                                                        photo, base)
                except BadRequestData:
                    return again(t("report.err.photo"))
            out = await run_in_threadpool(self.s.civic.submit, tenant, data, caller.actor,
                                          media_url=media_url, channel="web")
        except NgsiError as err:
            return again(t("report.err.desk", detail=err.detail), err.status)
        return self._page(request, "portal/report_done.html", status=201,
                          r=self._result(out, self.w.lang(request)))

    def _result(self, out: dict[str, Any], lang: str) -> dict[str, Any]:
        """What the answer page shows of the desk's answer to a report."""
        names = self._names(lang)
        routing = out.get("routing") or {}
        choices: list[str] = []
        if routing.get("needs_confirmation") and out.get("token"):
            choices = [out["service_code"], *(a["category"] for a in
                                              routing.get("alternatives", []))]
        place = out.get("place") or {}
        return {
            "rid": out["service_request_id"],
            "category": names.get(out.get("service_code") or "", out.get("service_code")),
            "department": self._department(out.get("department"), lang),
            "expected": self._when(out.get("expected_datetime"), with_time=False),
            "duplicate_of": out.get("duplicate_of"),
            "report_count": out.get("report_count"),
            "place": place.get("text") if isinstance(place, dict) else None,
            "token": out.get("token") if choices else None,
            "choices": [(c, names.get(c, c)) for c in dict.fromkeys(choices)],
            "confirmed": False,
        }

    async def confirm(self, request: Request) -> Response:
        """The citizen picks the category the routing was unsure about."""
        lang = self.w.lang(request)
        t = translator(lang)
        data = await self.w.form(request)
        if not self._token_ok(request, data.get("csrf")):
            return self._csrf_failed(request)
        rid = request.path_params["rid"]
        names = self._names(lang)
        offered = [c for c in data.get("choices", "").split(",") if c in names]
        caller = await run_in_threadpool(self.w.caller, request)
        tenant = self.w.tenant(request)
        body = {"service_code": data.get("service_code", ""), "token": data.get("token", "")}
        try:
            got = await run_in_threadpool(self.s.civic.confirm, tenant, rid, body,
                                          caller.actor)
        except NgsiError as err:
            key = "report.err.token" if err.status == 403 else "report.err.confirm"
            r = {"rid": rid, "category": "", "department": "", "expected": "",
                 "duplicate_of": None, "report_count": None, "place": None,
                 "token": data.get("token") or None,
                 "choices": [(c, names[c]) for c in offered], "confirmed": False}
            return self._page(request, "portal/report_done.html", status=err.status, r=r,
                              error=t(key, detail=err.detail))
        code = got.get("service_code")
        r = {"rid": got["service_request_id"], "category": names.get(code or "", code),
             "department": self._department(self._category_department(code), lang),
             "expected": self._when(got.get("expected_datetime"), with_time=False),
             "duplicate_of": None, "report_count": None, "place": None, "token": None,
             "choices": [], "confirmed": True}
        return self._page(request, "portal/report_done.html", r=r,
                          notice=t("report.confirmed", category=r["category"]))

    # -- track a report -----------------------------------------------------------------------
    async def track_form(self, request: Request) -> Response:
        """The lookup form; with ``?id=`` it goes to that request's page."""
        raw = request.query_params.get("id")
        if raw is None:
            return self._page(request, "portal/track.html", rid="")
        rid = normalise_id(raw)
        if not _RID.fullmatch(rid):
            t = translator(self.w.lang(request))
            return self._page(request, "portal/track.html", status=400, rid=raw[:40],
                              error=t("track.err.malformed"))
        return self.w.redirect(f"/portal/requests/{rid}")

    async def request_page(self, request: Request) -> Response:
        lang = self.w.lang(request)
        t = translator(lang)
        raw = request.path_params["rid"]
        rid = normalise_id(raw)
        if not _RID.fullmatch(rid):
            return self._page(request, "portal/track.html", status=400, rid=raw[:40],
                              error=t("track.err.malformed"))
        if rid != raw:
            return self.w.redirect(f"/portal/requests/{rid}")
        caller = await run_in_threadpool(self.w.caller, request)
        tenant = self.w.tenant(request)
        try:
            got = await run_in_threadpool(self.s.civic.get, tenant, rid, caller)
        except ResourceNotFound:
            return self._page(request, "portal/track.html", status=404, rid=rid,
                              error=t("track.err.unknown", rid=rid))
        code = got.get("service_code")
        names = self._names(lang)
        media = got.get("media_url") or ""
        # only a photo this site serves: the page's CSP allows images from itself alone
        media_path = media.split("://", 1)[-1].partition("/")[2] if media else ""
        view = {
            "duplicate_of": None,
            "report_count": None,
            **got,
            "category": names.get(code or "", code),
            "department": self._department(self._category_department(code), lang),
            "requested": self._when(got.get("requested_datetime")),
            "updated": self._when(got.get("updated_datetime")),
            "expected": self._when(got.get("expected_datetime")),
            "photo": f"/{media_path}" if media_path.startswith("civic/v1/media/") else None,
        }
        return self._page(request, "portal/request.html", q=view)

    # -- ask a question -----------------------------------------------------------------------
    async def ask_form(self, request: Request) -> Response:
        return self._page(request, "portal/ask.html", question="", a=None)

    async def ask_submit(self, request: Request) -> Response:
        lang = self.w.lang(request)
        t = translator(lang)
        data = await self.w.form(request)
        if not self._token_ok(request, data.get("csrf")):
            return self._csrf_failed(request)
        question = data.get("question", "")

        def again(message: str, status: int = 400) -> Response:
            return self._page(request, "portal/ask.html", status=status, question=question,
                              a=None, error=message)

        q = question.strip()
        if not q:
            return again(t("ask.err.empty"))
        if len(q) > MAX_QUESTION:
            return again(t("ask.err.long", n=f"{len(q):,}", max=f"{MAX_QUESTION:,}"))
        caller = await run_in_threadpool(self.w.caller, request)
        tenant = self.w.tenant(request)
        try:
            out = await run_in_threadpool(self.s.civic.ask, tenant, q, lang, caller.actor)
        except NgsiError as err:
            return again(t("ask.err.desk", detail=err.detail), err.status)
        return self._page(request, "portal/ask.html", question=question, a=out)


class _TooLarge(Exception):
    """The body is larger than a photo and the text fields together."""


def _blank_report() -> dict[str, str]:
    return {"description": "", "address_string": "", "lat": "", "long": ""}


def _point(lat: str, lon: str) -> tuple[float, float] | None:
    """``(lat, long)``, None when neither is given; ``ValueError`` when they are no place."""
    lat, lon = lat.strip(), lon.strip()
    if not lat and not lon:
        return None
    la, lo = float(lat), float(lon)
    if not (math.isfinite(la) and math.isfinite(lo) and -90 <= la <= 90 and -180 <= lo <= 180):
        raise ValueError("not a place on the globe")
    return round(la, 6), round(lo, 6)
