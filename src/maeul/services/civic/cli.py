"""``maeul civic classify``: route a backlog of complaints, one per line, offline.

Each input line gives one JSON line out, in order: ``category``, ``department``,
``confidence``, ``alternatives``, ``needs_confirmation`` and, where found, ``place`` and
``time``. A line that cannot be routed (empty, longer than 10,000 characters) gives
``{"line": N, "error": "..."}`` instead, and the command goes on; it exits 1 when any line
failed, 2 when the taxonomy or the places file is unusable.
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO
from zoneinfo import ZoneInfo

import orjson

from ...config import Settings

BATCH = 64
MAX_TEXT = 10_000


def _load_places(path: Path | None) -> Any:
    from .extract import Gazetteer

    if path is None:
        return None
    doc = orjson.loads(path.read_bytes())
    if not isinstance(doc, list):
        raise ValueError(f"{path}: a JSON array of NGSI-LD entities is expected")
    return Gazetteer.from_entities(doc)


def _now(text: str | None, tz: ZoneInfo) -> datetime:
    if not text:
        return datetime.now(tz)
    t = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return t if t.tzinfo else t.replace(tzinfo=tz)


def classify_stream(lines: TextIO, out: TextIO, clf: Any, now: datetime, gazetteer: Any
                    ) -> int:
    """Route every line of ``lines`` to ``out``; the number of lines that failed."""
    from .extract import extract

    failed = 0
    batch: list[tuple[int, str]] = []

    def flush() -> None:
        if not batch:
            return
        routings = clf.classify_many([t for _n, t in batch])
        for (_n, text), r in zip(batch, routings, strict=True):
            row: dict[str, Any] = r.to_json()
            row.update(extract(text, now, gazetteer).to_json())
            out.write(orjson.dumps(row).decode() + "\n")
        batch.clear()

    for n, raw in enumerate(lines, start=1):
        text = raw.rstrip("\r\n")
        error = None
        if not text.strip():
            error = "empty text"
        elif len(text) > MAX_TEXT:
            error = f"{len(text)} characters; at most {MAX_TEXT}"
        if error is not None:
            flush()
            failed += 1
            out.write(orjson.dumps({"line": n, "error": error}).decode() + "\n")
            continue
        batch.append((n, text))
        if len(batch) >= BATCH:
            flush()
    flush()
    return failed


def cli_classify(settings: Settings, args: argparse.Namespace) -> int:
    from .classifier import Classifier
    from .taxonomy import load_taxonomy

    try:
        taxonomy = load_taxonomy(args.taxonomy or settings.civic_taxonomy)
        gazetteer = _load_places(args.places)
        now = _now(args.now, ZoneInfo(settings.city_timezone))
    except (OSError, ValueError) as exc:
        print(f"maeul civic classify: {exc}", file=sys.stderr)
        return 2
    failed = classify_stream(sys.stdin, sys.stdout, Classifier(taxonomy), now, gazetteer)
    return 1 if failed else 0
