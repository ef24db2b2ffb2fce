"""Benchmark of the operator console's map with many entities, in a real Chromium.

    .venv/bin/python bench/web.py                 # 10,000 entities, 5 page loads
    .venv/bin/python bench/web.py --entities 2000 --loads 3

Seeds a temporary SQLite hub with N entities spread over the map layers (signals, traffic
sensors, car parks, air-quality stations, complaints) around Cologne, plus the cologne8
signal twin's road network as the basemap when the 'sim' extra is installed; serves it with
uvicorn on a free port; then prints:

- layers_ms: server time of ``/web/layers.geojson`` for the whole map (median of 5, httpx
  on the same machine) and its size in bytes; bbox_ms for a quarter of the area;
- basemap_ms: ``/web/basemap.geojson`` (first = built, then cached);
- points_ms: ``/web/points.json`` (the compact form the page reads) for the whole map, as
  sent to a browser (gzip), first (built) and the median of the rest (cached snapshot);
- in Chromium (``/usr/bin/chromium``), "median / max" over the loads, navigation start to:
  DOMContentLoaded (dom), the layer data received (data), the map holding every entity
  (``performance.mark('maeul-map-ready')``, ready) and painted two animation frames later
  (painted); ``first_*`` from ``--runs`` fresh browser contexts (empty cache, the first
  visit to the map), ``warm_*`` from the later loads in each.

No assertions: the issue's target (under 1 s with 10,000 entities) is read off the output.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
SDM = "https://smartdatamodels.org/dataModel."
KINDS = [
    ("TrafficSignal", {"signalState": "GGrr", "greenTime": 30}),
    (SDM + "Transportation/TrafficFlowObserved",
     {SDM + "Transportation/averageVehicleSpeed": 30.0}),
    (SDM + "Parking/OffStreetParking", {"https://smartdatamodels.org/availableSpotNumber": 40,
                                        "https://smartdatamodels.org/totalSpotNumber": 200}),
    (SDM + "Environment/AirQualityObserved",
     {"https://smartdatamodels.org/dataModel.Environment/pm10": 42}),
    ("ServiceRequest", {"status": "open"}),
]
BOX = (6.85, 50.88, 7.05, 51.00)  # around the cologne8 network


POINTS = "/web/points.json?layers=signals,traffic,parking,air,complaints,alerts"


def services_cache(app: Any) -> Any:
    """The layer cache of the app's map endpoints (a listener of the hub)."""
    from maeul.web.layercache import LayerCache

    for lis in app.state.services.hub.listeners:
        if isinstance(lis, LayerCache):
            return lis
    raise LookupError("the web's layer cache is not listening to the hub")


def seed(services: Any, n: int) -> None:
    from maeul.hub.core import upsert_many
    from maeul.hub.entities import expand_entity

    ctx = services.resolver.resolve(None)
    rnd = random.Random(7)
    batch = []
    for i in range(n):
        typ, attrs = KINDS[i % len(KINDS)]
        short = typ.rsplit("/", 1)[-1]
        doc: dict[str, Any] = {
            "id": f"urn:ngsi-ld:{short}:bench-{i}", "type": typ,
            "location": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [
                round(rnd.uniform(BOX[0], BOX[2]), 6), round(rnd.uniform(BOX[1], BOX[3]), 6)]}},
        }
        for k, v in attrs.items():
            doc[k] = {"type": "Property", "value": v}
        if short == "TrafficSignal" and i == 0:
            doc["refTwin"] = {"type": "Property", "value": "cologne8"}
        batch.append(expand_entity(doc, ctx))
        if len(batch) == 1000:
            upsert_many(services.hub, "default", batch, "bench")
            batch = []
    if batch:
        upsert_many(services.hub, "default", batch, "bench")


def timed_get(client: Any, url: str, runs: int = 5,
              before: Any = None) -> tuple[float, float, int, int]:
    """(first ms, median ms of the rest, bytes, bytes on the wire); ``before`` runs ahead
    of each request (to empty the server's layer cache)."""
    times = []
    size = wire = 0
    for _ in range(runs):
        if before is not None:
            before()
        t = time.perf_counter()
        r = client.get(url)
        times.append((time.perf_counter() - t) * 1000)
        r.raise_for_status()
        size, wire = len(r.content), r.num_bytes_downloaded
    return times[0], statistics.median(times[1:] or times), size, wire


PAGE_TIMES = """() => new Promise(done => requestAnimationFrame(() =>
    requestAnimationFrame(() => done({
        ready: performance.getEntriesByName('maeul-map-ready')[0].startTime,
        data: performance.getEntriesByName('maeul-map-data')[0].startTime,
        painted: performance.now(),
        dom: performance.getEntriesByType('navigation')[0].domContentLoadedEventEnd,
        features: Number(document.getElementById('map').dataset.features)}))))"""


def browser_loads(base: str, key: str, runs: int, loads: int, cold: Any
                  ) -> tuple[list[dict[str, float]], list[dict[str, float]]]:
    """(first loads, later loads): ``runs`` fresh browser contexts (empty cache), each
    signing in on a portal page, then loading the map ``loads`` times. The server's layer
    cache is emptied (``cold``) before each first load: the worst case, data just changed."""
    from playwright.sync_api import sync_playwright

    first: list[dict[str, float]] = []
    warm: list[dict[str, float]] = []
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        for _ in range(runs):
            ctx = b.new_context(viewport={"width": 1280, "height": 900})
            page = ctx.new_page()
            page.goto(f"{base}/signin?next=/portal")
            page.fill("#key", key)
            page.click("#signin-key button[type=submit]")
            page.wait_for_url(f"{base}/portal")
            for i in range(loads):
                if i == 0:
                    cold()
                page.goto(f"{base}/console", wait_until="commit")
                page.wait_for_selector("#map[data-ready='1']", timeout=60_000)
                (warm if i else first).append(page.evaluate(PAGE_TIMES))
            ctx.close()
        b.close()
    return first, warm


def spread(xs: list[float]) -> str:
    """'median / max' in whole milliseconds."""
    return f"{statistics.median(xs):.0f} / {max(xs):.0f}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--entities", type=int, default=10_000)
    ap.add_argument("--runs", type=int, default=4,
                    help="fresh browser contexts (each gives one first load, empty cache)")
    ap.add_argument("--loads", type=int, default=4, help="map loads per context")
    args = ap.parse_args(argv)

    import httpx
    import uvicorn

    from maeul.config import Settings
    from maeul.hub.server import build_app

    tmp = Path(tempfile.mkdtemp(prefix="maeul-bench-web-"))
    settings = Settings(store_url=f"sqlite:///{tmp}/web.db", context_cache_dir=tmp / "ctx",
                        secrets_dir=tmp / "secrets", trust_jobs=False, port=0)
    app = build_app(settings)
    services = app.state.services
    t0 = time.perf_counter()
    seed(services, args.entities)
    seed_s = time.perf_counter() - t0
    key = services.keys.create("operator", "default")
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                       access_log=False))
    th = threading.Thread(target=srv.run, daemon=True)
    th.start()
    while not srv.started:
        time.sleep(0.05)
    base = f"http://127.0.0.1:{port}"
    figures: dict[str, Any] = {"entities": args.entities, "seed_s": round(seed_s, 1)}
    try:
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"},
                          timeout=60) as c:
            cold = services_cache(app).clear
            time.sleep(1.1)  # past the cache's grace after the seeding's last write
            for name, url in (("layers", "/web/layers.geojson"), ("points", POINTS)):
                _f, med, size, wire = timed_get(c, url, 4, cold)
                figures.update({f"{name}_cold_ms": round(med), f"{name}_bytes": size,
                                f"{name}_gzip_bytes": wire})
                _f, med, _s, _w = timed_get(c, url)
                figures[f"{name}_cached_ms"] = round(med)
            mid = ((BOX[0] + BOX[2]) / 2, (BOX[1] + BOX[3]) / 2)
            q = f"{BOX[0]},{BOX[1]},{mid[0]},{mid[1]}"
            _f, med, size, _w = timed_get(c, f"{POINTS}&bbox={q}")
            figures.update(points_bbox_cached_ms=round(med), points_bbox_bytes=size)
            first, med, size, _w = timed_get(c, "/web/basemap.geojson")
            figures.update(basemap_first_ms=round(first), basemap_ms=round(med),
                           basemap_bytes=size)
        if Path(CHROMIUM).exists():
            first, warm = browser_loads(base, key, args.runs, max(2, args.loads), cold)
            figures["features_drawn"] = first[0]["features"]
            for name, loads in (("first", first), ("warm", warm)):
                figures[f"{name}_loads"] = len(loads)
                for k in ("dom", "data", "ready", "painted"):
                    figures[f"{name}_{k}_ms"] = spread([x[k] for x in loads])
        else:
            figures["browser"] = f"{CHROMIUM} missing: apt-get install chromium"
    finally:
        srv.should_exit = True
        th.join(15)
        services.close()
    width = max(len(k) for k in figures)
    for k, v in figures.items():
        print(f"{k:<{width}}  {v}")
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
