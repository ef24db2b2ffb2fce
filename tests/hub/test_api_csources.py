"""Context source registrations and csourceSubscriptions over HTTP, on every store backend:
CRUD, discovery filters, validation, mode rules, tenants, persistence, and notifications
received by a real local HTTP endpoint."""

from __future__ import annotations

import json
import threading
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from test_api_subscriptions import Receiver, poll

from support import make_settings

pytestmark = pytest.mark.filterwarnings(
    "ignore::starlette.exceptions.StarletteDeprecationWarning"
)
B = "/ngsi-ld/v1"
R = f"{B}/csourceRegistrations"
S = f"{B}/csourceSubscriptions"
VOCAB = "https://example.org/vocab#"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.stop()


@pytest.fixture
def ctx_url() -> Iterator[str]:
    body = json.dumps({"@context": {"Vehicle": f"{VOCAB}Vehicle",
                                    "speed": f"{VOCAB}speed"}}).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            self.send_response(200)
            self.send_header("Content-Type", "application/ld+json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}/ctx.jsonld"
    srv.shutdown()
    srv.server_close()


def link(url: str) -> str:
    return f'<{url}>; rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"'


def reg(n: int | str = 1, typ: str = "Building", **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": f"urn:ngsi-ld:ContextSourceRegistration:{n}",
        "type": "ContextSourceRegistration",
        "information": [{"entities": [{"type": typ}]}],
        "endpoint": "http://cs.example.org:1026",
    }
    body.update(extra)
    return body


def create(client: Any, body: dict[str, Any], **headers: str) -> str:
    r = client.post(R, json=body, headers=headers)
    assert r.status_code == 201, r.text
    loc = r.headers["location"]
    assert loc.startswith(f"{R}/")
    return str(loc.rsplit("/", 1)[1])


def ids(r: Any) -> list[str]:
    assert r.status_code == 200, r.text
    return [d["id"].rsplit(":", 1)[1] for d in r.json()]


def problem(r: Any, status: int = 400, name: str = "BadRequestData") -> str:
    assert r.status_code == status, r.text
    assert r.json()["type"].endswith(name), r.json()
    return str(r.json()["detail"])


def future(days: int = 30) -> str:
    return (datetime.now(UTC) + timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")


# -- registrations: CRUD -----------------------------------------------------------------------


def test_registration_crud(client: Any) -> None:
    rid = create(client, reg(1, information=[
        {"entities": [{"type": "Vehicle", "id": "urn:ngsi-ld:Vehicle:A"}],
         "propertyNames": ["speed"], "relationshipNames": ["isParked"]}],
        registrationName="fleet", expiresAt=future(), csourceProperty1="aValue"))
    assert rid == "urn:ngsi-ld:ContextSourceRegistration:1"
    got = client.get(f"{R}/{rid}").json()
    assert got["information"] == [{"entities": [{"type": "Vehicle", "id": "urn:ngsi-ld:Vehicle:A"}],
                                   "propertyNames": ["speed"],
                                   "relationshipNames": ["isParked"]}]
    assert got["mode"] == "inclusive" and got["operations"] == ["federationOps"]
    assert got["csourceProperty1"] == "aValue" and got["registrationName"] == "fleet"
    assert "createdAt" not in got
    sys_attrs = client.get(f"{R}/{rid}", params={"options": "sysAttrs"}).json()
    assert sys_attrs["createdAt"] <= sys_attrs["modifiedAt"]

    problem(client.post(R, json=reg(1)), 409, "AlreadyExists")

    r = client.patch(f"{R}/{rid}", json={"endpoint": "http://new.example.org",
                                          "expiresAt": None, "csourceProperty1": "b"})
    assert r.status_code == 204, r.text
    got = client.get(f"{R}/{rid}").json()
    assert got["endpoint"] == "http://new.example.org" and got["csourceProperty1"] == "b"
    assert "expiresAt" not in got

    assert client.delete(f"{R}/{rid}").status_code == 204
    problem(client.get(f"{R}/{rid}"), 404, "ResourceNotFound")
    problem(client.delete(f"{R}/{rid}"), 404, "ResourceNotFound")


def test_registration_without_id_gets_one(client: Any) -> None:
    body = reg()
    del body["id"]
    rid = create(client, body)
    assert rid.startswith("urn:ngsi-ld:ContextSourceRegistration:")
    assert client.get(f"{R}/{rid}").json()["id"] == rid


def test_registration_terms_follow_the_context(client: Any, ctx_url: str) -> None:
    body = reg(1, information=[{"entities": [{"type": "Vehicle"}], "propertyNames": ["speed"]}])
    create(client, body, Link=link(ctx_url))
    rid = body["id"]
    plain = client.get(f"{R}/{rid}").json()["information"][0]
    assert plain == {"entities": [{"type": f"{VOCAB}Vehicle"}], "propertyNames": [f"{VOCAB}speed"]}
    short = client.get(f"{R}/{rid}", headers={"Link": link(ctx_url)})
    assert short.json()["information"][0] == {"entities": [{"type": "Vehicle"}],
                                              "propertyNames": ["speed"]}
    assert ctx_url in short.headers["link"]
    # the same registration in JSON-LD, @context in the body
    ld = client.get(f"{R}/{rid}", headers={"Link": link(ctx_url), "Accept": "application/ld+json"})
    assert ld.json()["@context"] == ctx_url
    assert ids(client.get(R, params={"type": "Vehicle"}, headers={"Link": link(ctx_url)})) == ["1"]
    assert ids(client.get(R, params={"type": "Vehicle"})) == []


# -- discovery ---------------------------------------------------------------------------------


def test_discovery_filters(client: Any) -> None:
    create(client, reg(1, information=[
        {"entities": [{"type": "Vehicle", "id": "urn:ngsi-ld:Vehicle:A"}],
         "propertyNames": ["speed"]},
        {"entities": [{"type": "Parking", "idPattern": ".*downtown$"}]}],
        location={"type": "Point", "coordinates": [127.0, 37.5]}, scope="/Seoul/Gangnam"))
    create(client, reg(2, information=[{"entities": [{"type": "Building"}],
                                        "propertyNames": ["name"],
                                        "relationshipNames": ["locatedAt"]}],
                       endpoint="http://other.example.org", csourceProperty1="aValue"))
    create(client, reg(3, information=[{"propertyNames": ["name"]}]))
    create(client, reg(4, typ="Building", observationInterval={
        "startAt": "2020-08-01T22:07:00Z", "endAt": "2021-08-01T21:07:00Z"}))

    def q(**params: str) -> list[str]:
        return ids(client.get(R, params=params))

    assert q(type="Vehicle") == ["1", "3"]
    assert q(type="Vehicle|Building") == ["1", "2", "3"]
    assert q(type="Parking", idPattern=".*downtown$") == ["1", "3"]
    assert q(id="urn:ngsi-ld:Vehicle:A,urn:ngsi-ld:Vehicle:B") == ["1", "2", "3"]
    assert q(id="urn:ngsi-ld:Vehicle:B", type="Vehicle") == ["3"]
    assert q(id="urn:ngsi-ld:Parking:downtown") == ["1", "2", "3"]
    assert q(type="Building", attrs="locatedAt") == ["2"]
    assert q(attrs="speed") == ["1"]
    assert q(type="Building", attrs="speed") == []
    assert q(q='csourceProperty1=="aValue"') == ["2"]
    assert q(csf='endpoint=="http://other.example.org"') == ["2"]
    assert q(type="Vehicle", georel="near;maxDistance==1000", geometry="Point",
             coordinates="[127.001,37.5]") == ["1"]
    assert q(type="Vehicle", scopeQ="/Seoul/#") == ["1"]
    # an observation interval that is over needs a temporal query (latest information only)
    assert "4" not in q(type="Building")
    assert q(type="Building", timerel="before", timeAt="2021-08-01T22:00:00Z") == ["4"]
    assert q(type="Building", timerel="after", timeAt="2021-09-01T00:00:00Z") == []
    assert q(type="Building", timerel="between", timeAt="2021-01-01T00:00:00Z",
             endTimeAt="2022-01-01T00:00:00Z", timeproperty="observedAt") == ["4"]
    assert q(type="Building", timerel="before", timeAt="2021-08-01T22:00:00Z",
             timeproperty="createdAt") == []


def test_discovery_pagination(client: Any) -> None:
    for n in (1, 2, 3):
        create(client, reg(n))
    r = client.get(R, params={"type": "Building", "limit": "1", "offset": "1",
                              "options": "count"})
    assert ids(r) == ["2"]
    assert r.headers["ngsild-results-count"] == "3"
    links = r.headers["link"]
    assert f'<{R}?type=Building&options=count&limit=1&offset=0>;rel="prev"' in links
    assert f'<{R}?type=Building&options=count&limit=1&offset=2>;rel="next"' in links
    assert "json-ld#context" in links
    last = client.get(R, params={"type": "Building", "limit": "2", "offset": "2"})
    assert ids(last) == ["3"] and 'rel="next"' not in last.headers["link"]
    problem(client.get(R, params={"type": "Building", "limit": "0"}))
    problem(client.get(R, params={"type": "Building", "limit": "-1"}))


@pytest.mark.parametrize("params", [
    {},
    {"id": "invalidUri"},
    {"q": "(invalidQuery"},
    {"csf": "endpoint=="},
    {"georel": "within"},
    {"type": "Building", "georel": "near;maxDistance==5", "geometry": "Polygon",
     "coordinates": "[1,2]"},
    {"timerel": "before"},
    {"type": "Building", "timerel": "after", "timeAt": "yesterday"},
    {"type": "Building", "timeproperty": "deletedAt", "timerel": "after",
     "timeAt": "2020-01-01T00:00:00Z"},
    {"type": "(Building"},
    {"idPattern": "(("},
    {"scopeQ": "nope"},
])
def test_discovery_bad_queries(client: Any, params: dict[str, str]) -> None:
    problem(client.get(R, params=params))


# -- validation --------------------------------------------------------------------------------


def _drop(key: str) -> dict[str, Any]:
    body = reg()
    del body[key]
    return body


@pytest.mark.parametrize("body", [
    reg(type="Registration"),
    {**reg(), "type": None},
    _drop("information"),
    _drop("endpoint"),
    reg(information=[]),
    reg(information=None),
    reg(information=[{}]),
    reg(information=[{"entities": []}]),
    reg(information=[{"entities": [{"id": "urn:ngsi-ld:Car:1"}]}]),
    reg(information=[{"entities": [{"type": "Car", "id": "not a uri"}]}]),
    reg(information=[{"entities": [{"type": "Car", "idPattern": "(("}]}]),
    reg(information=[{"propertyNames": []}]),
    reg(information=[{"propertyNames": ["bad name"]}]),
    reg(information=[{"entities": [{"type": "Car"}], "attrs": ["x"]}]),
    reg(endpoint="not a uri"),
    reg(endpoint="http://"),
    reg(endpoint=5),
    reg(expiresAt="2018-11-29T14:53:15Z"),
    reg(expiresAt="tomorrow"),
    reg(mode="sometimes"),
    reg(operations=["teleport"]),
    reg(operations=[]),
    reg(mode="auxiliary", operations=["updateEntity"]),
    reg(mode="auxiliary", operations=["redirectionOps"]),
    reg(mode="exclusive"),
    reg(mode="exclusive", information=[{"entities": [{"type": "Car", "id": "urn:ngsi-ld:Car:1"}]}]),
    reg(mode="exclusive", information=[{"entities": [{"type": "Car", "idPattern": ".*"}],
                                        "propertyNames": ["speed"]}]),
    reg(location={"type": "Point", "coordinates": [500, 0]}),
    reg(observationInterval={"endAt": "2020-01-01T00:00:00Z"}),
    reg(observationInterval={"startAt": "2021-01-01T00:00:00Z", "endAt": "2020-01-01T00:00:00Z"}),
    reg(contextSourceInfo=[{"key": "X-Custom", "value": 123}]),
    reg(contextSourceInfo=[{"key": "X-Custom"}]),
    reg(management="yes"),
    reg(management={"cacheDuration": "bogus"}),
    reg(management={"cooldown": 0}),
    reg(management={"timeout": -5}),
    reg(management={"localOnly": "yes"}),
    reg(refreshRate="often"),
    reg(scope="no-slash"),
    reg(csourceProperty1=None),
])
def test_invalid_registration_rejected(client: Any, body: dict[str, Any]) -> None:
    problem(client.post(R, json=body))
    assert client.get(R, params={"type": "Building"}).json() == []


def test_valid_optional_members_accepted(client: Any) -> None:
    create(client, reg(1, mode="auxiliary", operations=["retrieveOps", "queryTemporal"],
                       contextSourceInfo=[{"key": "X-Auth-Token", "value": "abc"}],
                       management={"cacheDuration": "PT5M", "cooldown": 500, "timeout": 3000,
                                   "localOnly": True},
                       refreshRate="PT1M", tenant="upstream", scope=["/a", "/b/c"],
                       managementInterval={"startAt": "2020-08-01T22:07:00Z"}))
    got = client.get(f"{R}/urn:ngsi-ld:ContextSourceRegistration:1").json()
    assert got["management"]["cooldown"] == 500 and got["tenant"] == "upstream"
    assert got["managementInterval"] == {"startAt": "2020-08-01T22:07:00Z"}


def test_malformed_requests(client: Any) -> None:
    r = client.post(R, content=b'{"type": "ContextSourceRegistration",,}',
                    headers={"Content-Type": "application/json"})
    problem(r, 400, "InvalidRequest")
    problem(client.post(R, json=[reg()]), 400, "InvalidRequest")
    r = client.post(R, json={**reg(), "@context": "https://example.org/ctx.jsonld"})
    problem(r)  # @context in a plain JSON body
    r = client.post(R, content=json.dumps(reg()).encode(),
                    headers={"Content-Type": "application/ld+json"})
    problem(r)  # JSON-LD without @context
    rid = create(client, reg())
    r = client.patch(f"{R}/{rid}", content=b'{"endpoint": ,}',
                     headers={"Content-Type": "application/json"})
    problem(r, 400, "InvalidRequest")
    problem(client.get(f"{R}/invalidURI"))
    problem(client.patch(f"{R}/invalidURI", json={"endpoint": "http://x.org"}))
    problem(client.delete(f"{R}/invalidURI"))
    problem(client.get(f"{R}/urn:ngsi-ld:ContextSourceRegistration:nope"), 404,
            "ResourceNotFound")
    problem(client.patch(f"{R}/urn:ngsi-ld:ContextSourceRegistration:nope",
                         json={"endpoint": "http://x.org"}), 404, "ResourceNotFound")
    for patch in ({"type": "building"}, {"information": None}, {"endpoint": None},
                  {"id": "urn:ngsi-ld:ContextSourceRegistration:other"},
                  {"expiresAt": "2018-01-01T00:00:00Z"}, {"mode": "exclusive"}, {}):
        problem(client.patch(f"{R}/{rid}", json=patch))
    assert client.get(f"{R}/{rid}").json()["endpoint"] == "http://cs.example.org:1026"


def test_registrations_are_per_tenant(client: Any) -> None:
    rid = create(client, reg(), **{"NGSILD-Tenant": "t1"})
    problem(client.get(f"{R}/{rid}"), 404, "ResourceNotFound")
    problem(client.get(f"{R}/{rid}", headers={"NGSILD-Tenant": "t2"}), 404, "NonexistentTenant")
    create(client, reg(2), **{"NGSILD-Tenant": "t2"})
    assert ids(client.get(R, params={"type": "Building"}, headers={"NGSILD-Tenant": "t2"})) == [
        "2"]
    assert ids(client.get(R, params={"type": "Building"}, headers={"NGSILD-Tenant": "t1"})) == [
        "1"]
    problem(client.delete(f"{R}/{rid}", headers={"NGSILD-Tenant": "t2"}), 404, "ResourceNotFound")


# -- modes -------------------------------------------------------------------------------------


def _claim(n: int, mode: str, eid: str = "urn:ngsi-ld:Vehicle:A", typ: str = "Vehicle",
           attrs: tuple[str, ...] = ("speed",)) -> dict[str, Any]:
    info: dict[str, Any] = {"entities": [{"type": typ, "id": eid}]}
    if attrs:
        info["propertyNames"] = list(attrs)
    return reg(n, information=[info], mode=mode, operations=["redirectionOps"])


def test_exclusive_and_redirect_overlaps(client: Any) -> None:
    create(client, _claim(1, "exclusive"))
    problem(client.post(R, json=_claim(2, "exclusive")), 409, "Conflict")
    problem(client.post(R, json=_claim(2, "redirect")), 409, "Conflict")
    problem(client.post(R, json=_claim(2, "redirect", attrs=())), 409, "Conflict")
    create(client, _claim(2, "exclusive", attrs=("brand",)))  # another attribute
    create(client, _claim(3, "inclusive"))  # inclusive registrations may overlap anything
    create(client, _claim(4, "redirect", eid="urn:ngsi-ld:Vehicle:B"))
    create(client, _claim(5, "redirect", eid="urn:ngsi-ld:Vehicle:B"))  # redirects may overlap
    problem(client.post(R, json=_claim(6, "exclusive", eid="urn:ngsi-ld:Vehicle:B")), 409,
            "Conflict")
    # a PATCH that would create an overlap is refused too
    problem(client.patch(f"{R}/urn:ngsi-ld:ContextSourceRegistration:3",
                         json={"mode": "exclusive"}), 409, "Conflict")


def test_existing_entities_conflict(client: Any) -> None:
    r = client.post(f"{B}/entities", json={"id": "urn:ngsi-ld:Vehicle:A", "type": "Vehicle",
                                           "speed": {"type": "Property", "value": 5}})
    assert r.status_code == 201, r.text
    problem(client.post(R, json=_claim(1, "exclusive")), 409, "Conflict")
    create(client, _claim(1, "exclusive", attrs=("brand",)))  # the entity has no brand
    problem(client.post(R, json=_claim(2, "redirect", attrs=())), 409, "Conflict")
    typed = reg(3, information=[{"entities": [{"type": "Vehicle"}]}], mode="redirect")
    problem(client.post(R, json=typed), 409, "Conflict")
    create(client, reg(3, information=[{"entities": [{"type": "Bus"}]}], mode="redirect"))


# -- persistence -------------------------------------------------------------------------------


def test_registrations_and_subscriptions_survive_restart(store_url: str, tmp_path: Path) -> None:
    from support import app_client

    settings = make_settings(store_url, tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        with app_client(settings) as c:
            create(c, reg(1, csourceProperty1="kept"), **{"NGSILD-Tenant": "t1"})
            r = c.post(S, json=_csub("http://127.0.0.1:9/x", id="urn:ngsi-ld:Subscription:k"),
                       headers={"NGSILD-Tenant": "t1"})
            assert r.status_code == 201, r.text
        with app_client(settings) as c:
            h = {"NGSILD-Tenant": "t1"}
            got = c.get(f"{R}/urn:ngsi-ld:ContextSourceRegistration:1", headers=h)
            assert got.status_code == 200 and got.json()["csourceProperty1"] == "kept"
            assert ids(c.get(R, params={"type": "Building"}, headers=h)) == ["1"]
            sub = c.get(f"{S}/urn:ngsi-ld:Subscription:k", headers=h)
            assert sub.status_code == 200 and sub.json()["entities"] == [{"type": "Building"}]


# -- csourceSubscriptions ----------------------------------------------------------------------


def _csub(url: str, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": "Subscription",
        "entities": [{"type": "Building"}],
        "notification": {"endpoint": {"uri": url, "accept": "application/json"}},
    }
    body.update(extra)
    return body


def _subscribe(client: Any, body: dict[str, Any]) -> str:
    r = client.post(S, json=body)
    assert r.status_code == 201, r.text
    return str(r.headers["location"].rsplit("/", 1)[1])


def test_csource_subscription_notifications(client: Any, receiver: Receiver) -> None:
    create(client, reg(1))
    create(client, reg(9, typ="Bus"))
    sid = _subscribe(client, _csub(receiver.url))
    first = receiver.wait(1)[0]
    assert first["type"] == "ContextSourceNotification" and first["subscriptionId"] == sid
    assert first["triggerReason"] == "newlyMatching"
    assert [d["id"] for d in first["data"]] == ["urn:ngsi-ld:ContextSourceRegistration:1"]
    assert first["notifiedAt"].endswith("Z")

    create(client, reg(2, information=[{"entities": [{"type": "Building"}]},
                                       {"entities": [{"type": "Bus"}]}]))
    second = receiver.wait(2)[1]
    assert second["triggerReason"] == "newlyMatching"
    # only the RegistrationInfo items that match the subscription
    assert second["data"][0]["information"] == [{"entities": [{"type": "Building"}]}]

    rid2 = "urn:ngsi-ld:ContextSourceRegistration:2"
    assert client.patch(f"{R}/{rid2}", json={"endpoint": "http://x.org"}).status_code == 204
    third = receiver.wait(3)[2]
    assert third["triggerReason"] == "updated" and third["data"][0]["endpoint"] == "http://x.org"

    new_info = {"information": [{"entities": [{"type": "NewType"}]}]}
    assert client.patch(f"{R}/{rid2}", json=new_info).status_code == 204
    assert receiver.wait(4)[3]["triggerReason"] == "noLongerMatching"

    assert client.delete(f"{R}/urn:ngsi-ld:ContextSourceRegistration:1").status_code == 204
    fifth = receiver.wait(5)[4]
    assert fifth["triggerReason"] == "noLongerMatching"
    assert fifth["data"][0]["id"] == "urn:ngsi-ld:ContextSourceRegistration:1"
    client.delete(f"{R}/urn:ngsi-ld:ContextSourceRegistration:9")  # never matched
    receiver.quiet(5)

    def sent() -> bool:
        return client.get(f"{S}/{sid}").json()["notification"].get("timesSent") == 5

    poll(sent)
    n = client.get(f"{S}/{sid}").json()["notification"]
    assert n["status"] == "ok" and "lastSuccess" in n and "timesFailed" not in n


def test_csource_subscription_filters(client: Any, receiver: Receiver) -> None:
    _subscribe(client, _csub(receiver.url, watchedAttributes=["name"],
                             geoQ={"georel": "near;maxDistance==2000", "geometry": "Point",
                                   "coordinates": [-8.52, 41.2]}))
    here = {"type": "Point", "coordinates": [-8.521, 41.2]}
    create(client, reg(1, information=[{"entities": [{"type": "Building"}],
                                       "propertyNames": ["other"]}], location=here))
    create(client, reg(2, information=[{"entities": [{"type": "Building"}],
                                       "propertyNames": ["name"]}]))
    create(client, reg(3, information=[{"entities": [{"type": "Building"}],
                                       "propertyNames": ["name"]}], location=here))
    got = receiver.wait(1)
    receiver.quiet(1)
    assert got[0]["data"][0]["id"] == "urn:ngsi-ld:ContextSourceRegistration:3"


def test_csource_subscription_temporal_query(client: Any, receiver: Receiver) -> None:
    _subscribe(client, _csub(receiver.url, temporalQ={
        "timerel": "after", "timeAt": "2020-06-01T22:07:00Z", "timeproperty": "createdAt"}))
    create(client, reg(1))  # no managementInterval: does not match
    create(client, reg(2, managementInterval={"startAt": "2020-08-01T22:07:00Z",
                                              "endAt": "2021-08-01T21:07:00Z"}))
    got = receiver.wait(1)
    receiver.quiet(1)
    assert got[0]["data"][0]["id"] == "urn:ngsi-ld:ContextSourceRegistration:2"


def test_csource_subscription_update_notifies_current_matches(
    client: Any, receiver: Receiver
) -> None:
    create(client, reg(1, typ="Vehicle"))
    create(client, reg(2, typ="Bus"))
    sid = _subscribe(client, _csub(receiver.url))  # Building: nothing matches yet
    receiver.quiet(0, 0.3)
    r = client.patch(f"{S}/{sid}", json={"entities": [{"type": "Vehicle"}, {"type": "Bus"}]})
    assert r.status_code == 204, r.text
    got = receiver.wait(1)[0]
    assert got["triggerReason"] == "newlyMatching"
    assert sorted(d["id"][-1] for d in got["data"]) == ["1", "2"]


@pytest.mark.parametrize("patch", [{"isActive": False}, {"expiresAt": "2020-08-01T22:07:00Z"}])
def test_inactive_csource_subscription_is_silent(client: Any, receiver: Receiver,
                                                  patch: dict[str, Any]) -> None:
    sid = _subscribe(client, _csub(receiver.url))
    assert client.patch(f"{S}/{sid}", json=patch).status_code == 204
    create(client, reg(1))
    receiver.quiet(0, 0.8)
    status = client.get(f"{S}/{sid}").json()["status"]
    assert status == ("paused" if "isActive" in patch else "expired")


def test_csource_subscription_time_interval(client: Any, receiver: Receiver) -> None:
    create(client, reg(1))
    _subscribe(client, _csub(receiver.url, timeInterval=1))
    got = receiver.wait(2, timeout=10)
    assert all(n["data"][0]["id"] == "urn:ngsi-ld:ContextSourceRegistration:1" for n in got)


def test_failed_csource_notification_counted_once(client: Any) -> None:
    sid = _subscribe(client, _csub("http://127.0.0.1:9/nothing"))
    create(client, reg(1))

    def failed() -> bool:
        return "lastFailure" in client.get(f"{S}/{sid}").json()["notification"]

    poll(failed)
    n = client.get(f"{S}/{sid}").json()["notification"]
    assert n["status"] == "failed" and n["timesSent"] == 1 and n["timesFailed"] == 1


def test_deleted_subscription_drops_pending_retries(store_url: str, tmp_path: Path) -> None:
    from support import app_client

    rec = Receiver(fail_first=1)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            with app_client(make_settings(store_url, tmp_path, notify_backoff_s=1.0)) as c:
                sid = _subscribe(c, _csub(rec.url))
                create(c, reg(1))
                poll(lambda: rec.failed == 1)
                assert c.delete(f"{S}/{sid}").status_code == 204
                rec.quiet(0, 1.6)  # the retry, due after 1 s, is dropped unsent
    finally:
        rec.stop()


def test_csource_subscription_crud(client: Any) -> None:
    url = "http://127.0.0.1:9/x"
    sid = _subscribe(client, _csub(url, id="urn:ngsi-ld:Subscription:c1",
                                   q='csourceProperty1=="a"'))
    _subscribe(client, _csub(url, id="urn:ngsi-ld:Subscription:c2"))
    _subscribe(client, _csub(url, id="urn:ngsi-ld:Subscription:c3"))
    problem(client.post(S, json=_csub(url, id=sid)), 409, "AlreadyExists")
    got = client.get(f"{S}/{sid}").json()
    assert got["type"] == "Subscription" and got["status"] == "active"
    assert got["notification"]["endpoint"]["uri"] == url and got["q"] == 'csourceProperty1=="a"'
    # kept apart from entity subscriptions
    assert client.get(f"{B}/subscriptions").json() == []
    page = client.get(S, params={"limit": "1", "offset": "1", "options": "count"})
    assert [s["id"] for s in page.json()] == ["urn:ngsi-ld:Subscription:c2"]
    assert page.headers["ngsild-results-count"] == "3"
    assert f'<{S}?options=count&limit=1&offset=0>;rel="prev"' in page.headers["link"]
    assert f'<{S}?options=count&limit=1&offset=2>;rel="next"' in page.headers["link"]
    new = {"notification": {"format": "keyValues",
                            "endpoint": {"uri": "http://127.0.0.1:9/y",
                                         "accept": "application/json"}}}
    assert client.patch(f"{S}/{sid}", json=new).status_code == 204
    assert client.get(f"{S}/{sid}").json()["notification"] == new["notification"]
    problem(client.patch(f"{S}/{sid}", json={"notification": {"format": "keyValues"}}))
    problem(client.patch(f"{S}/{sid}", json={"type": None}))
    problem(client.patch(f"{S}/invalidUri", json=new))
    problem(client.patch(f"{S}/urn:ngsi-ld:Subscription:nope", json=new), 404,
            "ResourceNotFound")
    problem(client.get(f"{S}/invalidUri"))
    problem(client.get(f"{S}/urn:ngsi-ld:Subscription:nope"), 404, "ResourceNotFound")
    problem(client.get(S, params={"limit": "-5"}))
    assert client.delete(f"{S}/{sid}").status_code == 204
    problem(client.delete(f"{S}/{sid}"), 404, "ResourceNotFound")
    problem(client.delete(f"{S}/invalidUri"))


@pytest.mark.parametrize("body", [
    {"type": "Subscription", "entities": [{"type": "Building"}]},
    {"type": "RandomType", "entities": [{"type": "Building"}],
     "notification": {"endpoint": {"uri": "http://127.0.0.1:9/x"}}},
    {"q": "speed>"},
    {"watchedAttributes": []},
    {"expiresAt": "2018-08-01T22:07:00Z"},
    {"temporalQ": {"timerel": "before"}},
    {"temporalQ": {"timerel": "after", "timeAt": "2020-01-01T00:00:00Z",
                   "timeproperty": "deletedAt"}},
    {"geoQ": {"georel": "near", "geometry": "Point", "coordinates": [1, 2]}},
])
def test_invalid_csource_subscription_rejected(client: Any, body: dict[str, Any]) -> None:
    full = body if "type" in body else _csub("http://127.0.0.1:9/x", **body)
    problem(client.post(S, json=full))
    assert client.get(S).json() == []
