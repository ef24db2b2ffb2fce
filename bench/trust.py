"""Benchmark of the trust layer's hot paths, in-process. Prints a table and JSON lines.

    .venv/bin/python bench/trust.py            # ~1 minute on 2 cores
    .venv/bin/python bench/trust.py --quick    # smaller scales

Figures:
- pii_sentences_per_s: the personal-data scanner on realistic Korean/English complaint text;
- hub_writes_per_s: entity creations through the hub core (one transaction each, audit chain
  sealed inline on SQLite), for a type outside the privacy policy (baseline), one with an
  identifier to pseudonymise, and one with masked text whose original is kept encrypted; the
  ratio to the baseline is the cost of privacy by design;
- audit_verify_records_per_s: verification of the hash chain;
- kpi_compute_s: one computation of every built-in KPI over seeded ServiceRequest entities.
No assertions: a benchmark prints figures, tests check behaviour.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

SENTENCES = [
    "아파트 앞 도로에 포트홀이 생겼어요. 저는 김민수입니다. 010-2345-6789로 연락 주세요.",
    "버스 720번이 30분째 안 와요. 3번 출구 앞 정류장입니다.",
    "서울시 중구 세종대로 110 앞에 불법주차 차량 12가 3456이 있습니다.",
    "My name is John Park, email john.park@example.com, the street light is broken.",
    "가로등이 고장났어요. 주소는 부산광역시 해운대구 우동 123-4번지입니다.",
    "주민등록번호 800101-1234567 로 신청했는데 처리가 안 됩니다.",
    "공원 화장실이 너무 더러워요. 요금은 12,000원이라고 들었는데 맞나요?",
    "Noise from construction at 221 Main Street starts at 6am every day.",
]


def _timed(fn: Any, n: int) -> float:
    t = time.perf_counter()
    fn(n)
    return n / (time.perf_counter() - t)


def bench_pii(n: int) -> dict[str, Any]:
    from maeul.trust.pii import mask_text

    rnd = random.Random(1)
    texts = [rnd.choice(SENTENCES) for _ in range(n)]

    def run(k: int) -> None:
        for t in texts[:k]:
            mask_text(t)

    run(min(200, n))  # warm the compiled patterns
    rate = _timed(run, n)
    chars = sum(map(len, texts)) / n
    return {"figure": "pii_sentences_per_s", "value": round(rate), "unit": "sentences/s",
            "chars_per_s": round(rate * chars)}


def _services(tmp: Path) -> Any:
    from maeul.config import Settings
    from maeul.hub.app import Services

    return Services(Settings(store_url=f"sqlite:///{tmp}/trust.db", auth_enabled=False,
                             trust_jobs=False, secrets_dir=tmp / "secrets",
                             context_cache_dir=tmp / "ctx", context_fetch=False))


def bench_writes(tmp: Path, n: int) -> list[dict[str, Any]]:
    from maeul.hub.entities import expand_entity

    svc = _services(tmp)
    ctx = svc.resolver.resolve(None)
    kinds = {
        "baseline (type outside the policy)": lambda i: {
            "id": f"urn:ngsi-ld:Thing:{i}", "type": "Thing",
            "name": {"type": "Property", "value": f"thing {i}"}},
        "identifier pseudonymised": lambda i: {
            "id": f"urn:ngsi-ld:Vehicle:{i}", "type": "Vehicle",
            "vehiclePlateIdentifier": {"type": "Property", "value": f"{i % 100:02d}가{i:04d}"}},
        "text masked, original encrypted": lambda i: {
            "id": f"urn:ngsi-ld:ServiceRequest:{i}", "type": "ServiceRequest",
            "description": {"type": "Property", "value": SENTENCES[i % len(SENTENCES)]}},
    }
    out = []
    base = None
    try:
        for label, make in kinds.items():
            ents = [expand_entity(make(i), ctx) for i in range(n)]

            def run(k: int, ents: list[Any] = ents) -> None:
                for e in ents[:k]:
                    svc.hub.create_entity("default", e, "bench")

            rate = _timed(run, n)
            base = base or rate
            out.append({"figure": "hub_writes_per_s", "case": label, "value": round(rate),
                        "unit": "creates/s", "ratio_to_baseline": round(rate / base, 2)})
        from maeul.trust.audit import verify_store

        t = time.perf_counter()
        res = verify_store(svc.store)
        dt = time.perf_counter() - t
        out.append({"figure": "audit_verify_records_per_s", "value": round(res.records / dt),
                    "unit": "records/s", "records": res.records, "intact": res.ok})
    finally:
        svc.close()
    return out


def bench_kpis(tmp: Path, n: int) -> dict[str, Any]:
    from maeul.hub.core import upsert_many
    from maeul.hub.entities import expand_entity

    svc = _services(tmp / "kpi")
    ctx = svc.resolver.resolve(None)
    now = datetime.now(UTC)
    rnd = random.Random(3)
    ents = []
    for i in range(n):
        opened = now - timedelta(hours=rnd.uniform(1, 24 * 60))
        closed = opened + timedelta(hours=rnd.uniform(1, 96))
        ents.append(expand_entity({
            "id": f"urn:ngsi-ld:ServiceRequest:k{i}", "type": "ServiceRequest",
            "status": {"type": "Property", "value": "closed"},
            "requested_datetime": {"type": "Property", "value": opened.isoformat()},
            "closedAt": {"type": "Property", "value": closed.isoformat()}}, ctx))
    try:
        for i in range(0, n, 1000):
            upsert_many(svc.hub, "default", ents[i:i + 1000], "bench")
        times = []
        for _ in range(3):
            t = time.perf_counter()
            svc.trust.kpis.compute("default")
            times.append(time.perf_counter() - t)
    finally:
        svc.close()
    return {"figure": "kpi_compute_s", "value": round(statistics.median(times), 3),
            "unit": "s (median of 3)", "service_requests": n}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args(argv)
    scale = 1 if args.quick else 5
    rows: list[dict[str, Any]] = [bench_pii(4000 * scale)]
    with tempfile.TemporaryDirectory(prefix="maeul-trust-bench-") as d:
        rows += bench_writes(Path(d), 600 * scale)
        rows.append(bench_kpis(Path(d), 4000 * scale))
    print(f"{'figure':30} {'case':36} {'value':>10}  unit", file=sys.stderr, flush=True)
    for r in rows:
        extra = f"  (x{r['ratio_to_baseline']})" if "ratio_to_baseline" in r else ""
        print(f"{r['figure']:30} {r.get('case', ''):36} {r['value']:>10}  {r['unit']}{extra}",
              file=sys.stderr)
    for r in rows:
        print(json.dumps(r, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
