"""`maeul demo`: a demo city on the embedded store, alive with live sensor updates.

It imports real open data (Smart Data Models examples, Birmingham car parks, Seoul air quality,
Los Angeles loop detectors), provisions the loop detectors as devices, and replays their later
readings through the same ingest path real devices use, one reading round every few seconds.
When SUMO is installed (the ``sim`` extra) a traffic-signal twin (RESCO's cologne8, eight real
Cologne intersections) runs at five times real time: its detectors publish through device
ingest and its controller acts through the trust layer's proposals.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import uvicorn

from .config import Settings
from .hub.server import build_app

log = logging.getLogger(__name__)
TRAFFIC_TYPE = "https://smartdatamodels.org/dataModel.Transportation/TrafficFlowObserved"
SPEED = "https://smartdatamodels.org/dataModel.Transportation/averageVehicleSpeed"
SIGNAL_TYPE = "https://uri.etsi.org/ngsi-ld/default-context/TrafficSignal"
PUBLIC_TYPES = [
    TRAFFIC_TYPE,
    "https://smartdatamodels.org/dataModel.Environment/AirQualityObserved",
    "https://smartdatamodels.org/dataModel.Parking/OffStreetParking",
    SIGNAL_TYPE,
]
# the signal twin: a RESCO network shipped in sumo-rl, looped so the city stays alive
SIGNALS_NET = "cologne8"
SIGNALS_CONTROLLER = "delaypressure"
SIGNALS_SPEED = 5.0  # simulated seconds per wall second


def _load_city(services: Any, data: Path) -> dict[str, int]:
    from .ingest.load import load_snapshots

    counts: dict[str, int] = {}
    plan = [
        ("sdm-examples", data / "smart_data_models", None),
        ("parking", data / "parking" / "birmingham_parking.csv", 3000),
        ("air", data / "air" / "seoul_air_2022.utf8.csv", 3000),
        ("traffic", data / "traffic", 207 * 12),
    ]
    for name, path, limit in plan:
        if not path.exists():
            log.warning("demo: %s is missing, skipping the %s import", path, name)
            continue
        stats = load_snapshots(services, name, path, limit=limit, actor="demo")
        counts[name] = stats.snapshots
    return counts


def _provision_sensors(services: Any, data: Path) -> list[tuple[str, dict[str, float]]]:
    """Loop detectors as devices, with their later readings to replay."""
    from .ingest.devices import validate_device
    from .ingest.importers import iter_traffic_los

    ingest = services.ingest.ingest
    readings: dict[str, list[dict[str, Any]]] = {}
    path = data / "traffic"
    if not (path / "los_speed.csv").exists():
        return []
    for snap in iter_traffic_los(path / "los_speed.csv", path / "loc.csv", limit_rows=300):
        readings.setdefault(snap["id"], []).append(snap)
    ctx = services.resolver.resolve(None)
    per_sensor: list[list[tuple[str, dict[str, float]]]] = []
    for eid, snaps in itertools.islice(readings.items(), 50):
        dev = eid.rsplit(":", 1)[-1]
        ingest.provision("default", validate_device({
            "deviceId": dev,
            "entityId": eid,
            "entityType": TRAFFIC_TYPE,
            "attributes": {"speed": {"name": SPEED, "unitCode": "KMH"}},
        }, ctx), "demo")
        per_sensor.append(
            [(dev, {"speed": s[SPEED]["value"]}) for s in snaps[12:] if SPEED in s]
        )
    # one reading of every sensor per round, in time order
    rounds = [r for step in itertools.zip_longest(*per_sensor) for r in step if r is not None]
    return rounds


def _replay(services: Any, rounds: list[tuple[str, dict[str, float]]], stop: threading.Event,
            period_s: float) -> None:
    ingest = services.ingest.ingest
    per_round = 50
    i = 0
    while not stop.is_set() and rounds:
        for dev, payload in rounds[i : i + per_round]:
            try:
                ingest.handle("default", dev, payload, "demo-sensor")
            except Exception as exc:  # noqa: BLE001 - a live feed keeps going
                log.warning("demo sensor %s update failed: %s", dev, type(exc).__name__)
        i = (i + per_round) % max(1, len(rounds))
        stop.wait(period_s)


def _start_signals(services: Any) -> tuple[Any, str]:
    """The signal twin in the background, or None and why it is off."""
    try:
        from .services.signals.service import SignalService
        from .services.signals.twin import sumo_home

        sumo_home()  # names the missing 'sim' extra before anything starts
        svc = SignalService(services, SIGNALS_NET, SIGNALS_CONTROLLER, "default",
                            approval_policy="automatic", speed=SIGNALS_SPEED, loop=True)
        svc.start()
    except Exception as exc:  # noqa: BLE001 - the demo runs without the twin
        return None, f"{type(exc).__name__}: {exc}"
    return svc, ""


def _quarter() -> str:
    now = datetime.now(UTC)
    return f"{now.year}Q{(now.month - 1) // 3 + 1}"


# reports a demo citizen files once the server runs, around the cologne8 twin (lon, lat)
DEMO_REPORTS = [
    ("중앙로 사거리 가로등이 어젯밤부터 꺼져 있어서 길이 너무 어두워요", 6.9520, 50.9412),
    ("버스정류장 옆 인도에 큰 포트홀이 생겨서 넘어질 뻔했어요", 6.9575, 50.9398),
    ("공원 입구에 누가 소파랑 쓰레기 봉투를 잔뜩 버리고 갔어요", 6.9491, 50.9433),
    ("The traffic light at the school crossing has been dark since this morning",
     6.9548, 50.9421),
    ("새벽마다 공사장에서 쿵쿵거리는 소리 때문에 잠을 못 자요", 6.9603, 50.9388),
    ("Cars are parked on the pavement outside the library every evening", 6.9512, 50.9445),
]


def _file_reports(services: Any, stop: threading.Event) -> None:
    """File the demo citizens' reports through the civic desk (its models load here, in the
    background, so the demo starts at once)."""
    for text, lon, lat in DEMO_REPORTS:
        if stop.is_set():
            return
        try:
            services.civic.submit("default", {"description": text, "lat": lat, "long": lon},
                                  "demo-citizen", channel="demo")
        except Exception:  # the demo goes on without the desk (e.g. without the nlp extra)
            log.warning("the demo's complaints were not filed", exc_info=True)
            return


def run_demo(settings: Settings, duration: float | None = None) -> None:
    data = settings.data_dir
    preload = data / "smart_data_models"
    if settings.context_preload_dir is None and preload.is_dir():
        settings = settings.model_copy(update={"context_preload_dir": preload})
    from .hub.app import Services

    # the demo owns the services, so it can stop the signal twin and the feeder before the
    # store closes (the app would close it first and leave the twin writing to a closed store)
    services = Services(settings)
    app = build_app(settings, services)
    print(f"maeul demo: store {settings.store_url}; importing real open data from {data} ...",
          flush=True)
    t0 = time.monotonic()
    counts = _load_city(services, data) if data.is_dir() else {}
    rounds = _provision_sensors(services, data) if data.is_dir() else []
    services.keys.set_public_types("default", PUBLIC_TYPES, "demo")
    key = services.keys.create("operator", "default", ["traffic-operations"], label="demo")
    signals, signals_off = _start_signals(services)
    services.trust.registry.sync("default")
    kpis = services.trust.kpis.compute("default")
    base = settings.public_url or f"http://{settings.host}:{settings.port}"
    print(f"imported {counts} in {time.monotonic() - t0:.1f} s; "
          f"{len(rounds)} live readings queued for 50 sensors", flush=True)
    print("\nOpen:")
    print(f"  console       {base}/console (sign in with the key below); portal {base}/portal")
    print(f"  entities      {base}/ngsi-ld/v1/entities?type={TRAFFIC_TYPE}&limit=5")
    print(f"  history       {base}/ngsi-ld/v1/temporal/entities?type={TRAFFIC_TYPE}&lastN=5")
    print(f"  types         {base}/ngsi-ld/v1/types")
    print(f"  OpenAPI       {base}/openapi.json")
    print(f"  ingest stats  {base}/ingest/v1/stats")
    print(f"  AI registry   {base}/public/v1/registry")
    print(f"  public KPIs   {base}/public/v1/kpis  ({sum(k.value is not None for k in kpis)}"
          f" of {len(kpis)} have data)")
    print(f"  report        {base}/public/v1/reports/{_quarter()}.html")
    print(f"  complaints    {base}/open311/v2/requests.json (a demo citizen files "
          f"{len(DEMO_REPORTS)} once the desk's models load); ask at {base}/portal/ask")
    if signals is not None:
        print(f"\nSignal twin: {SIGNALS_NET} ({SIGNALS_CONTROLLER}, {SIGNALS_SPEED:g}x real time, "
              f"impact level {signals.level}, proposals applied automatically):")
        print(f"  signals       {base}/ngsi-ld/v1/entities?type=TrafficSignal&limit=10")
        print(f"  approaches    {base}/ngsi-ld/v1/entities?type={TRAFFIC_TYPE}"
              f"&idPattern=urn:ngsi-ld:TrafficFlowObserved:{SIGNALS_NET}-.*&limit=10")
        print(f"  proposals     {base}/trust/v1/proposals?system=traffic-signal-control")
        print(f"  its entry     {base}/public/v1/registry/traffic-signal-control")
    else:
        print(f"\nSignal twin: off ({signals_off})")
    print("\nOperator key (send as 'Authorization: Bearer KEY'):")
    print(f"  {key}", flush=True)
    stop = threading.Event()
    feeder = threading.Thread(target=_replay, args=(services, rounds, stop, 2.0), daemon=True)
    feeder.start()
    reporter = threading.Thread(target=_file_reports, args=(services, stop), daemon=True)
    reporter.start()
    config = uvicorn.Config(app, host=settings.host, port=settings.port, log_level="warning",
                            access_log=False)
    server = uvicorn.Server(config)
    if duration is not None:
        threading.Timer(duration, lambda: setattr(server, "should_exit", True)).start()
    try:
        server.run()
    finally:
        stop.set()
        if signals is not None:
            signals.stop(timeout=10)
        feeder.join(timeout=5)
        reporter.join(timeout=30)  # a report being filed finishes before the store closes
        services.close()
