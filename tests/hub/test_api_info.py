"""GET /ngsi-ld/v1/info/sourceIdentity: who this broker is, per tenant, kept across restarts."""

from __future__ import annotations

import re
import warnings
from typing import Any

import pytest

from maeul.hub.info_api import iso_duration

B = "/ngsi-ld/v1"
DURATION = re.compile(r"^P(?!$)(\d+D)?(T(?!$)(\d+H)?(\d+M)?(\d+(\.\d+)?S)?)?$")


def identity(client: Any, tenant: str | None = None) -> dict[str, Any]:
    headers = {"NGSILD-Tenant": tenant} if tenant else {}
    r = client.get(f"{B}/info/sourceIdentity", headers=headers)
    assert r.status_code == 200, r.text
    doc: dict[str, Any] = r.json()
    return doc


def test_the_identity_names_the_broker_and_each_tenant(client: Any) -> None:
    doc = identity(client)
    assert doc["type"] == "ContextSourceIdentity" and doc["id"].startswith("urn:ngsi-ld:")
    assert DURATION.match(doc["contextSourceUptime"]), doc
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", doc["contextSourceTimeAt"])
    a, b = identity(client, "ta"), identity(client, "tb")
    aliases = {doc["contextSourceAlias"], a["contextSourceAlias"], b["contextSourceAlias"]}
    assert len(aliases) == 3  # one per tenant, so a Via chain tells them apart
    assert identity(client, "ta")["contextSourceAlias"] == a["contextSourceAlias"]
    assert a["id"] == doc["id"]  # one broker


def test_the_identity_survives_a_restart(settings: Any) -> None:
    from maeul.hub.server import build_app

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from starlette.testclient import TestClient

    ids = []
    for _ in range(2):
        with TestClient(build_app(settings)) as c:
            ids.append(identity(c)["id"])
    assert ids[0] == ids[1]


@pytest.mark.parametrize("seconds,text", [
    (0, "PT0S"), (4.5, "PT4.5S"), (61, "PT1M1S"), (3600, "PT1H0S"),
    (90061.25, "P1DT1H1M1.25S"),
])
def test_iso_duration(seconds: float, text: str) -> None:
    assert iso_duration(seconds) == text
    assert DURATION.match(text)
