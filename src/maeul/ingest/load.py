"""Loading importer snapshots into the hub (``maeul import``).

Every snapshot is validated and expanded like an API payload, then written with
``upsert_many`` in batches (one transaction per batch); the core records the attribute
history, so the whole series of a file ends up in the temporal API.
"""

from __future__ import annotations

import sys
import time
from itertools import islice
from pathlib import Path
from typing import Any

from ..config import Settings
from ..hub.core import upsert_many
from ..hub.entities import expand_entity
from ..hub.errors import NgsiError
from ..hub.ldcontext import Context
from .importers import IMPORTERS, ImportDataError, ImportStats
from .mqtt import valid_tenant

__all__ = ["load_snapshots", "run_import"]


def _importer(name: str) -> Any:
    spec = IMPORTERS.get(name)
    if spec is None:
        raise ValueError(
            f"unknown importer {name!r}; choose one of: {', '.join(sorted(IMPORTERS))}"
        )
    return spec


def load_snapshots(
    services: Any,
    importer: str,
    path: Path,
    tenant: str = "default",
    limit: int | None = None,
    batch: int = 500,
    actor: str = "import",
) -> ImportStats:
    """Import ``path`` with ``IMPORTERS[importer]`` into ``tenant``; returns the counters.

    ``limit`` stops after that many snapshots.  Raises ValueError for an unknown importer or
    bad arguments, ImportDataError for malformed input (also for a snapshot the hub rejects)
    and OSError for an unreadable file.  Batches written before an error stay written.
    """
    spec = _importer(importer)
    if not valid_tenant(tenant):
        raise ValueError("tenant must be 1-64 letters, digits, '-', '_' or '.'")
    if batch < 1:
        raise ValueError("batch must be at least 1")
    if limit is not None and limit < 0:
        raise ValueError("limit must not be negative")
    path = Path(path)
    stats = ImportStats()
    contexts: dict[str | None, Context] = {}
    snapshots = spec.run(path, stats=stats)
    source = snapshots if limit is None else islice(snapshots, limit)
    pending: list[dict[str, Any]] = []
    try:
        for n, doc in enumerate(source, start=1):
            doc = dict(doc)
            raw_ctx = doc.pop("@context", None)
            if raw_ctx is None or isinstance(raw_ctx, str):
                ctx = contexts.get(raw_ctx)
                if ctx is None:
                    ctx = contexts[raw_ctx] = services.resolver.resolve(raw_ctx)
            else:
                ctx = services.resolver.resolve(raw_ctx)
            try:
                pending.append(expand_entity(doc, ctx))
            except NgsiError as exc:
                raise ImportDataError(
                    f"snapshot {n} ({doc.get('id')}) is not a valid entity: {exc.detail}",
                    path=path,
                ) from None
            if len(pending) >= batch:
                upsert_many(services.hub, tenant, pending, actor)
                pending = []
        if pending:
            upsert_many(services.hub, tenant, pending, actor)
    finally:
        close = getattr(snapshots, "close", None)
        if close is not None:
            close()
    return stats


def run_import(
    settings: Settings, importer: str, path: Path, tenant: str, limit: int | None
) -> int:
    """``maeul import``: load a file, print a one-line summary; 0 on success, 2 on bad input."""
    from ..hub.app import Services

    try:
        _importer(importer)
        if not valid_tenant(tenant):
            raise ValueError("--tenant must be 1-64 letters, digits, '-', '_' or '.'")
        if limit is not None and limit < 0:
            raise ValueError("--limit must not be negative")
    except ValueError as exc:
        print(f"maeul: {exc}", file=sys.stderr)
        return 2
    path = Path(path)
    if not path.exists():
        print(f"maeul: {path}: no such file or directory", file=sys.stderr)
        return 2
    services = Services(settings)
    started = time.monotonic()
    try:
        stats = load_snapshots(services, importer, path, tenant=tenant, limit=limit)
    except (ImportDataError, OSError) as exc:
        print(f"maeul: {exc}", file=sys.stderr)
        return 2
    finally:
        services.close()
    seconds = time.monotonic() - started
    print(
        f"imported {importer} from {path} into tenant {tenant}: {stats.rows} rows read, "
        f"{stats.entities} entities, {stats.snapshots} snapshots in {seconds:.2f} s"
    )
    return 0
