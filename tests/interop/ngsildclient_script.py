"""Runs inside the ngsildclient venv (see Makefile) against a live hub; prints JSON results.

Usage: python ngsildclient_script.py PORT NOTIFY_URI
"""

import json
import sys

from ngsildclient import Client, Entity, SubscriptionBuilder

port = int(sys.argv[1])
notify_uri = sys.argv[2]
out = {}
with Client(hostname="127.0.0.1", port=port, verbose=False) as client:
    e = Entity("AirQualityObserved", "Interop:Obs1")
    e.prop("NO2", 22, unitcode="GP", observedat="2026-11-20T10:00:00Z")
    e.gprop("location", (37.56, 126.97))
    e.rel("refDevice", "urn:ngsi-ld:Device:Sensor1")
    out["created"] = bool(client.create(e))
    got = client.get("urn:ngsi-ld:AirQualityObserved:Interop:Obs1")
    out["got_no2"] = got["NO2"]["value"]
    out["got_rel"] = got["refDevice"]["object"]
    for i in range(2, 6):
        x = Entity("AirQualityObserved", f"Interop:Obs{i}")
        x.prop("NO2", 10 * i)
        client.create(x)
    found = client.query(type="AirQualityObserved", q="NO2>25")
    out["query_ids"] = sorted(x.id for x in found)
    out["count"] = client.count(type="AirQualityObserved")
    sub = SubscriptionBuilder(notify_uri).select_type("AirQualityObserved").watch(["NO2"]).build()
    out["subscription_id"] = client.subscriptions.create(sub)
    out["subscriptions_listed"] = len(client.subscriptions.list())
    got.prop("NO2", 99)
    client.update(got)
print(json.dumps(out))
