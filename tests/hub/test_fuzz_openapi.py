"""Property-based fuzzing of every documented operation: no input may cause a 5xx.

Schemathesis generates requests from /openapi.json and sends them to the in-process ASGI app
(SQLite backend only); each operation gets a bounded number of examples.
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from support import make_settings

schemathesis = pytest.importorskip("schemathesis")
from schemathesis.checks import not_a_server_error  # noqa: E402

pytestmark = [
    pytest.mark.filterwarnings("ignore::starlette.exceptions.StarletteDeprecationWarning"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
]

MAX_EXAMPLES = 25
BUDGET_S = 100.0
SEED = [
    {"id": "urn:ngsi-ld:Car:1", "type": "Car", "speed": {"type": "Property", "value": 10},
     "location": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [1, 2]}}},
]


@pytest.fixture(scope="module")
def fuzz_app(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from maeul.hub.server import build_app

    d: Path = tmp_path_factory.mktemp("fuzz")
    app = build_app(make_settings(f"sqlite:///{d}/hub.db", d, context_fetch=False))
    svc = app.state.services
    from maeul.hub.entities import expand_entity

    ctx = svc.resolver.resolve(None)
    for doc in SEED:
        svc.hub.create_entity("default", expand_entity(doc, ctx))
    yield app
    svc.close()


def test_no_server_error(fuzz_app: Any) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        schema = schemathesis.openapi.from_asgi("/openapi.json", fuzz_app)
    failures: list[str] = []
    started = time.monotonic()
    n_ops = 0
    for result in schema.get_all_operations():
        op = result.ok()
        n_ops += 1

        @given(case=op.as_strategy())
        @settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        def run(case: Any) -> None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                case.call_and_validate(checks=[not_a_server_error])

        try:
            run()
        except Exception as exc:  # noqa: BLE001 - collect every operation's failure
            failures.append(f"{op.label}: {str(exc)[:2000]}")
        assert time.monotonic() - started < BUDGET_S, "fuzzing ran over its time budget"
    assert n_ops > 20
    assert not failures, "\n\n".join(failures)


# Inputs that once made the hub answer 500 (found by fuzzing); each must now be a 4xx.
B = "/ngsi-ld/v1"
REGRESSIONS: list[tuple[str, str, Any]] = [
    ("POST", "/temporal/entityOperations/query", {"type": "Query", "entities": 5}),
    ("POST", "/temporal/entityOperations/query",
     {"type": "Query", "entities": [{"type": "T"}], "attrs": 5}),
    ("POST", "/temporal/entityOperations/query",
     {"type": "Query", "entities": [{"type": "T"}], "temporalQ": 5}),
    ("POST", "/temporal/entityOperations/query", {"type": "Query", "entities": [{"id": 5}]}),
    ("POST", "/entityOperations/query", {"type": "Query", "geoQ": "x"}),
    ("POST", "/entityOperations/query", {"type": "Query", "q": 5}),
    ("POST", "/entityOperations/query", {"type": "Query", "scopeQ": 5}),
    ("POST", "/subscriptions", {"type": "Subscription", "entities": [{"type": "T"}],
                                "notification": {"endpoint": {"uri": "http://[::1"}}}),
    ("PATCH", "/entities/urn:a:b/attrs/p", {"type": "Relationship"}),
    ("PATCH", "/entities/urn:a:b", {"location": {"value": [1, 2]}}),
    ("PATCH", "/entities/urn:a:b", {"p": {"type": "GeoProperty"}}),
    ("GET", "/temporal/entities/urn:a:t?options=aggregatedValues&aggrMethods=avg"
            "&aggrPeriodDuration=P99999999999D", None),
    ("GET", "/temporal/entities/urn:a:t?timerel=between&timeAt=0001-01-01T00:00:00%2B01:00"
            "&endTimeAt=2000-01-01T00:00:00Z", None),
    ("GET", "/temporal/entities?type=T&idPattern=(", None),
]


@pytest.mark.parametrize("method,path,body", REGRESSIONS, ids=range(len(REGRESSIONS)))
def test_former_server_errors_are_4xx(client: Any, method: str, path: str, body: Any) -> None:
    r = client.post(f"{B}/entities", json={"id": "urn:a:b", "type": "T", "p": 1,
                                           "location": {"type": "Point", "coordinates": [1, 2]}})
    assert r.status_code == 201
    r = client.post(f"{B}/temporal/entities", json={
        "id": "urn:a:t", "type": "T",
        "p": [{"type": "Property", "value": 1, "observedAt": "2024-01-01T00:00:00Z"}]})
    assert r.status_code == 201
    before = client.get(f"{B}/entities/urn:a:b").json()
    r = client.request(method, B + path, json=body) if body is not None else client.get(B + path)
    assert 400 <= r.status_code < 500, r.text
    assert client.get(f"{B}/entities/urn:a:b").json() == before


def test_huge_last_n_is_clamped(client: Any) -> None:
    r = client.post(f"{B}/temporal/entities", json={
        "id": "urn:a:t", "type": "T",
        "p": [{"type": "Property", "value": 1, "observedAt": "2024-01-01T00:00:00Z"}]})
    assert r.status_code == 201
    r = client.get(f"{B}/temporal/entities/urn:a:t", params={"lastN": "9" * 30})
    assert r.status_code == 200
    assert r.json()["p"][0]["value"] == 1
