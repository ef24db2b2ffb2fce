"""The operator console in-process: sign-in and sessions, CSRF, roles, decisions, audit."""

from __future__ import annotations

import re
from typing import Any

import pytest
from webcity import T, green, proposal

from maeul.web.session import COOKIE

pytestmark = pytest.mark.filterwarnings(
    "ignore::starlette.exceptions.StarletteDeprecationWarning"
)


def submit(app: Any, **over: Any) -> str:
    from maeul.hub.auth import Caller

    svc = Caller("key:svc", "service", T)
    return str(app.state.services.trust.decisions.submit(T, proposal(**over), svc)["id"])


def csrf(html: str) -> str:
    m = re.search(r'name="csrf" value="([^"]+)"', html)
    assert m, "no CSRF field on the page"
    return m.group(1)


# -- sign-in, sessions --------------------------------------------------------------------
@pytest.mark.parametrize("path", ["/console", "/console/decisions", "/console/alerts",
                                  "/console/kpis", "/console/audit", "/console/decisions/x"])
def test_anonymous_is_sent_to_sign_in(client: Any, path: str) -> None:
    r = client().get(path, follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"] == f"/signin?next={path}"


def test_password_sign_in_sets_a_strict_cookie_and_sign_out_ends_it(client: Any) -> None:
    c = client()
    r = c.post("/signin", data={"method": "password", "username": "olivia",
                                "password": "correct horse battery",
                                "next": "/console/kpis"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/console/kpis"
    cookie = r.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}=") and "HttpOnly" in cookie
    assert "SameSite=strict" in cookie and "Max-Age=28800" in cookie
    page = c.get("/console/decisions")
    assert page.status_code == 200 and "user:olivia" in page.text
    old = c.cookies.get(COOKIE)
    # sign-out needs the session's CSRF token
    assert c.post("/signout", data={"csrf": "wrong"}).status_code == 403
    r = c.post("/signout", data={"csrf": csrf(page.text)}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/signin"
    # the old cookie no longer opens anything
    again = client()
    again.cookies.set(COOKIE, old)
    assert again.get("/console", follow_redirects=False).status_code == 303


@pytest.mark.parametrize("user,password", [("olivia", "wrong password!"),
                                           ("nobody", "correct horse battery"),
                                           ("Bad Name", "correct horse battery"),
                                           ("olivia", "")])
def test_wrong_credentials_are_refused(client: Any, user: str, password: str) -> None:
    c = client()
    r = c.post("/signin", data={"method": "password", "username": user,
                                "password": password})
    assert r.status_code == 401
    assert "set-cookie" not in r.headers
    assert 'role="alert"' in r.text
    assert c.get("/console", follow_redirects=False).status_code == 303


def test_api_key_sign_in_carries_the_keys_role_and_ends_with_the_key(app: Any,
                                                                    client: Any) -> None:
    key = app.state.keys["reader"]
    c = client(key=key)
    page = c.get("/console/decisions")
    assert page.status_code == 200
    key_id = key.split("_")[1]
    assert f"key:{key_id}" in page.text
    assert client().post("/signin", data={"method": "key", "key": "mk_nope_nope"}
                         ).status_code == 401
    app.state.services.keys.revoke(key_id)
    assert c.get("/console", follow_redirects=False).status_code == 303


def test_expired_and_forged_sessions_are_not_accepted(app: Any, client: Any) -> None:
    c = client(user="olivia")
    assert c.get("/console").status_code == 200
    value = c.cookies.get(COOKIE)
    sid, sig = value.split(".")
    forged = client()
    forged.cookies.set(COOKIE, f"{sid}.{'0' * len(sig)}")
    assert forged.get("/console", follow_redirects=False).status_code == 303
    from maeul.web.session import KIND

    # move the stored expiry into the past: the session is over
    doc = app.state.services.store.reader().get_json(KIND, "", sid)
    doc["expires"] = doc["createdAt"] - 1
    app.state.services.store.write(lambda tx: tx.put_json(KIND, "", sid, doc))
    assert c.get("/console", follow_redirects=False).status_code == 303


def test_a_removed_account_loses_its_session(app: Any, client: Any) -> None:
    from maeul.web.users import Users

    c = client(user="carol")
    assert c.get("/console").status_code == 200
    assert Users(app.state.services.store).remove("carol")
    assert c.get("/console", follow_redirects=False).status_code == 303


def test_sign_in_for_another_tenant_is_refused(client: Any) -> None:
    r = client().post("/signin", data={"method": "password", "username": "olivia",
                                       "password": "correct horse battery",
                                       "tenant": "elsewhere"})
    assert r.status_code == 403
    r = client().post("/signin", data={"method": "password", "username": "olivia",
                                       "password": "correct horse battery",
                                       "tenant": "bad tenant!"})
    assert r.status_code == 400


def test_sign_in_never_redirects_to_another_site(client: Any) -> None:
    for nxt in ("//evil.example/x", "https://evil.example/", "/\\evil"):
        r = client().post("/signin", data={"method": "password", "username": "olivia",
                                           "password": "correct horse battery",
                                           "next": nxt}, follow_redirects=False)
        assert r.headers["location"] == "/console"


def test_a_form_from_another_site_is_refused(client: Any) -> None:
    r = client(origin="https://evil.example").post(
        "/signin", data={"method": "password", "username": "olivia",
                         "password": "correct horse battery"})
    assert r.status_code == 403 and "set-cookie" not in r.headers


# -- decisions ------------------------------------------------------------------------------
def test_reader_sees_the_queue_but_no_decision_forms(app: Any, client: Any) -> None:
    pid = submit(app)
    c = client(user="rita")
    queue = c.get("/console/decisions")
    assert queue.status_code == 200 and f"/console/decisions/{pid}" in queue.text
    page = c.get(f"/console/decisions/{pid}")
    assert page.status_code == 200
    assert "the queue on the north approach" in page.text and "signals-2.1" in page.text
    assert "/approve" not in page.text and 'id="approve"' not in page.text
    # posting anyway: the decision engine refuses the role, nothing changes
    r = c.post(f"/console/decisions/{pid}/approve", data={"csrf": csrf(page.text)})
    assert r.status_code == 403 and "may not decide" in r.text
    assert app.state.services.trust.decisions.get(T, pid)["status"] == "pending"
    assert green(app.state.services) == 30


def test_operator_approves_with_a_reason_and_sees_it_applied(app: Any, client: Any) -> None:
    pid = submit(app)
    c = client(user="olivia")
    page = c.get(f"/console/decisions/{pid}")
    assert 'id="approve"' in page.text and 'id="reject"' in page.text
    r = c.post(f"/console/decisions/{pid}/approve",
               data={"csrf": csrf(page.text), "reason": "checked the camera"},
               follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"] == f"/console/decisions/{pid}?done=approve"
    done = c.get(r.headers["location"])
    assert re.search(r'id="status" class="badge st-applied"', done.text)
    s = app.state.services
    doc = s.trust.decisions.get(T, pid)
    assert doc["status"] == "applied" and doc["approvals"][0]["actor"] == "user:olivia"
    assert doc["approvals"][0]["reason"] == "checked the camera"
    assert green(s) == 45
    history = c.get("/console/decisions")
    assert "checked the camera" in history.text
    # applied: it can now be rolled back, with a reason
    assert 'id="rollback"' in done.text
    rb = c.post(f"/console/decisions/{pid}/rollback", data={"csrf": csrf(done.text),
                                                             "reason": "undo"})
    assert rb.status_code == 200 and s.trust.decisions.get(T, pid)["status"] == "rolledBack"
    assert green(s) == 30


@pytest.mark.parametrize("token", [None, "", "not-the-token"])
def test_a_decision_without_the_csrf_token_is_refused(app: Any, client: Any,
                                                      token: str | None) -> None:
    pid = submit(app)
    c = client(user="olivia")
    data = {"reason": "x"} if token is None else {"reason": "x", "csrf": token}
    r = c.post(f"/console/decisions/{pid}/approve", data=data)
    assert r.status_code == 403
    assert app.state.services.trust.decisions.get(T, pid)["status"] == "pending"


def test_a_proxy_may_forward_the_browsers_host(app: Any, client: Any) -> None:
    pid = submit(app)
    c = client(user="olivia", origin="https://maeul.city.example",
               **{"x-forwarded-host": "maeul.city.example"})
    token = csrf(c.get(f"/console/decisions/{pid}").text)
    r = c.post(f"/console/decisions/{pid}/approve", data={"csrf": token},
               follow_redirects=False)
    assert r.status_code == 303


def test_a_decision_from_another_origin_is_refused(app: Any, client: Any) -> None:
    pid = submit(app)
    c = client(user="olivia")
    token = csrf(c.get(f"/console/decisions/{pid}").text)
    c.headers["origin"] = "https://evil.example"
    r = c.post(f"/console/decisions/{pid}/approve", data={"csrf": token})
    assert r.status_code == 403
    assert app.state.services.trust.decisions.get(T, pid)["status"] == "pending"


def test_reject_and_modify_need_reasons_and_valid_actions(app: Any, client: Any) -> None:
    pid = submit(app)
    c = client(user="olivia")
    token = csrf(c.get(f"/console/decisions/{pid}").text)
    r = c.post(f"/console/decisions/{pid}/reject", data={"csrf": token, "reason": "  "})
    assert r.status_code == 400 and "reason" in r.text
    r = c.post(f"/console/decisions/{pid}/modify",
               data={"csrf": token, "reason": "shorter", "action": "{not json"})
    assert r.status_code == 400 and "not valid JSON" in r.text
    assert "{not json" in r.text  # the operator's text is kept on the page to fix
    r = c.post(f"/console/decisions/{pid}/modify", data={
        "csrf": token, "reason": "shorter green",
        "action": '{"kind": "hub.patch", "format": "keyValues", "attrs": {"greenTime": 40}}',
        "approve": "on"}, follow_redirects=False)
    assert r.status_code == 303
    s = app.state.services
    assert s.trust.decisions.get(T, pid)["status"] == "applied" and green(s) == 40
    r = c.post(f"/console/decisions/{pid}/dance", data={"csrf": token})
    assert r.status_code == 400
    pid2 = submit(app, green=50)
    r = c.post(f"/console/decisions/{pid2}/reject", data={"csrf": token, "reason": "no"})
    assert r.status_code == 200 and s.trust.decisions.get(T, pid2)["status"] == "rejected"


def test_history_pages_and_a_bad_offset(app: Any, client: Any) -> None:
    pids = [submit(app, green=40 + i) for i in range(3)]
    c = client(user="olivia")
    page = c.get("/console/decisions?offset=1")
    assert page.status_code == 200 and "(3)" in page.text
    newest_first = [p for p in reversed(pids)]
    assert f"/console/decisions/{newest_first[0]}" in page.text.split('id="history-title"')[0]
    history = page.text.split('id="history-title"')[1]
    assert f"/console/decisions/{newest_first[0]}" not in history
    assert all(f"/console/decisions/{p}" in history for p in newest_first[1:])
    assert c.get("/console/decisions?offset=x").status_code == 400


def test_a_bare_proposal_renders(app: Any, client: Any) -> None:
    """No evidence, no expected effect, a list of one target: the page still renders."""
    pid = submit(app, evidence=None, expectedEffect=None)
    r = client(user="olivia").get(f"/console/decisions/{pid}")
    assert r.status_code == 200 and 'id="approve"' in r.text


def test_unknown_proposal_is_404(client: Any) -> None:
    r = client(user="olivia").get("/console/decisions/nope")
    assert r.status_code == 404


def test_queue_fragment_for_htmx_polling(app: Any, client: Any) -> None:
    submit(app)
    r = client(user="olivia").get("/console/decisions", headers={"HX-Request": "true"})
    assert r.status_code == 200
    assert 'id="queue"' in r.text and "<html" not in r.text


# -- alerts, KPIs, audit --------------------------------------------------------------------
def test_a_poll_after_the_session_ended_sends_the_page_to_sign_in(client: Any) -> None:
    r = client().get("/console/alerts", headers={"HX-Request": "true"})
    assert r.status_code == 204 and r.headers["hx-redirect"] == "/signin?next=/console/alerts"


def test_alerts_show_pending_proposals(app: Any, client: Any) -> None:
    pid = submit(app)
    r = client(user="rita").get("/console/alerts")
    assert r.status_code == 200 and f"/console/decisions/{pid}" in r.text


def test_kpi_dashboard_lists_every_kpi_with_its_target(app: Any, client: Any) -> None:
    s = app.state.services
    s.trust.kpis.compute(T)
    r = client(user="rita").get("/console/kpis")
    assert r.status_code == 200
    for k in s.trust.kpis.latest(T, False):
        assert k["name"]["ko"] in r.text
        assert f'id="kpi-{k["id"]}"' in r.text


def test_audit_viewer_is_for_admins_and_verifies_the_chain(app: Any, client: Any) -> None:
    assert client(user="olivia").get("/console/audit").status_code == 403
    nav = client(user="olivia").get("/console").text
    assert "/console/audit" not in nav
    c = client(user="adam")
    page = c.get("/console/audit")
    assert page.status_code == 200 and "web.signin" in page.text
    r = c.post("/console/audit/verify", data={"csrf": csrf(page.text)})
    assert r.status_code == 200 and 'id="verify-result"' in r.text
    assert "온전합니다" in r.text
    assert client(user="olivia").post("/console/audit/verify",
                                      data={"csrf": "x"}).status_code == 403


def test_pages_send_security_headers(client: Any) -> None:
    r = client(user="olivia").get("/console")
    assert "script-src 'self'" in r.headers["content-security-policy"]
    assert r.headers["x-frame-options"] == "DENY"
