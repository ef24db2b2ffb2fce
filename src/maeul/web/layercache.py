"""A per-tenant, per-rights cache of the map's points, dropped when the hub changes.

The map's layers are the most expensive read of the console (every entity of five types,
decoded from the store). ``LayerCache`` keeps one built snapshot per *view*: tenant plus
everything that decides what a caller may see (anonymous or not, role, purposes, and for
anonymous callers the tenant's public types), so two callers share an entry only when the
hub would show them exactly the same points.

It is a hub ``ChangeListener``: a change to an entity of a map type, or to any entity's
location (an alert is placed at its target), bumps the tenant's version and the entries built
before it are no longer used. Two limits keep it honest where the listener cannot see:
changes made by another replica of the hub (PostgreSQL deployments) are picked up after
``max_age_s`` at the latest, and a snapshot read within ``grace_s`` of a change is not kept,
since the listener runs inside the write transaction, before it commits.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import NamedTuple

from ..hub.auth import Caller
from ..hub.store.base import Entity, Tx
from .base import short_name

LOCATION = "https://uri.etsi.org/ngsi-ld/location"


class Point(NamedTuple):
    """One entity on the map (a tuple: 10,000 of them are built per snapshot)."""

    lon: float
    lat: float
    id: str
    types: list[str]
    name: str
    status: str


@dataclass
class Snapshot:
    """Every visible point of every layer (whole map), in store order."""

    points: dict[str, list[Point]]
    records_reads: bool  # whether showing these points must write privacy.read records
    version: int = 0
    built: float = 0.0
    bodies: dict[Hashable, bytes] = field(default_factory=dict)  # rendered answers


def view_key(tenant: str, caller: Caller, public: Callable[[], frozenset[str]]) -> Hashable:
    """What decides which points ``caller`` sees in ``tenant`` (its rights, not its name)."""
    pub = public() if caller.anonymous else frozenset()
    return (tenant, caller.role, caller.tenant, caller.purposes, pub)


class LayerCache:
    """Snapshots by view key; thread-safe; at most ``size`` views kept."""

    def __init__(self, types: set[str], *, size: int = 32, max_age_s: float = 30.0,
                 grace_s: float = 1.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.types = types  # short type names of the map layers
        self.size = size
        self.max_age_s = max_age_s
        self.grace_s = grace_s
        self.clock = clock
        self._lock = threading.Lock()
        self._entries: OrderedDict[Hashable, Snapshot] = OrderedDict()
        self._version: dict[str, int] = {}
        self._changed_at: dict[str, float] = {}
        self._builders: dict[Hashable, threading.Lock] = {}

    # -- ChangeListener -------------------------------------------------------------------
    def changed(self, tx: Tx, tenant: str, before: Entity | None, after: Entity | None,
                attrs: set[str], trigger: str) -> None:
        ent = after or before
        if ent is None:
            return
        if LOCATION not in attrs and not any(short_name(t) in self.types for t in ent["type"]):
            return
        with self._lock:
            self._version[tenant] = self._version.get(tenant, 0) + 1
            self._changed_at[tenant] = self.clock()

    # -- use ------------------------------------------------------------------------------
    def version(self, tenant: str) -> tuple[int, float]:
        """The tenant's version and when it last changed (read before building)."""
        with self._lock:
            return self._version.get(tenant, 0), self._changed_at.get(tenant, -1e18)

    def get(self, key: Hashable, tenant: str) -> Snapshot | None:
        with self._lock:
            snap = self._entries.get(key)
            if snap is None:
                return None
            if (snap.version != self._version.get(tenant, 0)
                    or self.clock() - snap.built > self.max_age_s):
                del self._entries[key]
                return None
            self._entries.move_to_end(key)
            return snap

    def put(self, key: Hashable, tenant: str, snap: Snapshot, version: tuple[int, float],
            started: float) -> None:
        """Keep ``snap`` (read from ``started`` on) unless the tenant changed meanwhile."""
        with self._lock:
            if self._version.get(tenant, 0) != version[0]:
                return
            if started - version[1] < self.grace_s:
                return  # a write seen by the listener may not have committed yet
            snap.version, snap.built = version[0], started
            self._entries[key] = snap
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)

    def building(self, key: Hashable) -> threading.Lock:
        """The lock a builder of ``key``'s snapshot holds (so concurrent requests share one)."""
        with self._lock:
            lock = self._builders.get(key)
            if lock is None:
                if len(self._builders) > 4 * self.size:
                    self._builders.clear()  # only ever a few views; forget idle ones
                lock = self._builders[key] = threading.Lock()
            return lock

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
