"""The @context store behind ``/ngsi-ld/v1/jsonldContexts`` (ETSI GS CIM 009 v1.8, 5.13).

Three kinds of entries (5.13.1):

* ``Hosted``: given by a client (Add @context); kept in the hub's store per tenant, so they
  survive a restart and every replica serves them;
* ``ImplicitlyCreated``: made by the hub for a subscription whose @context is not one URL, so
  that its notifications can name their @context with a URL; kept like Hosted ones;
* ``Cached``: remote documents the resolver took in (downloaded, or found in its disk cache or
  preload), shared by every tenant as that cache is; the built-in core context is the Cached
  entry ``core``.

Hosted and ImplicitlyCreated contexts are served at ``/ngsi-ld/v1/jsonldContexts/{localId}``,
and a request naming that URL (with any host, or as a relative reference) is resolved from the
store, never over the network. ``numberOfHits`` and ``lastUsage`` count the requests of this
process that used an entry (the request that made an ImplicitlyCreated one included).

Framework-free: errors are NgsiErrors; ``contexts_api.py`` adapts HTTP.
"""

from __future__ import annotations

import hashlib
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import unquote, urlsplit

import orjson

from .errors import BadRequestData, LdContextNotAvailable, ResourceNotFound
from .ldcontext import (
    CORE_CONTEXT_URL,
    ContextError,
    ContextResolver,
    is_core_context_url,
    load_core_context,
)
from .store.base import Store, Tx
from .store.sqlbase import now_iso

KIND: Final = "jsonldContext"  # store kind of Hosted and ImplicitlyCreated entries
HOSTED: Final = "Hosted"
CACHED: Final = "Cached"
IMPLICIT: Final = "ImplicitlyCreated"
KINDS: Final = (HOSTED, CACHED, IMPLICIT)
PATH: Final = "/ngsi-ld/v1/jsonldContexts/"
CORE_ID: Final = "core"
_LOOPBACK: Final = frozenset({"localhost", "127.0.0.1", "::1"})
_USAGE_LIMIT: Final = 10_000  # usage figures kept; the oldest go first


@dataclass(frozen=True)
class Entry:
    """One stored @context as the API shows it."""

    local_id: str
    kind: str
    created_at: str
    url: str | None = None  # the original URL (Cached); None when served here
    context: Any = None  # the @context value (Hosted, ImplicitlyCreated, core)
    usage_key: str = ""  # what the resolver reports when a request uses it


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="microseconds")[:-6] + "Z"


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def check_context_value(value: Any) -> None:
    """The @context of an Add @context body: a URL, an object, or an array of those (5.13.2.4,
    5.5.4); BadRequestData otherwise."""
    items = value if isinstance(value, list) else [value]
    for item in items:
        if not isinstance(item, str | dict):
            raise BadRequestData(
                "@context must be a URL, an object or an array of those, "
                f"not {type(item).__name__} {orjson.dumps(item).decode()[:40]}"
            )
        if isinstance(item, str) and not item:
            raise BadRequestData("@context must not hold an empty URL")


def needs_implicit(source: Any) -> bool:
    """True when an @context cannot be named by one URL (an object, or an array that is not a
    single URL): a subscription with it gets an ImplicitlyCreated @context."""
    if isinstance(source, dict):
        return True
    return isinstance(source, list) and not (len(source) == 1 and isinstance(source[0], str))


def local_id_of(url: str) -> tuple[str, bool] | None:
    """``(localId, ours)`` when ``url`` has the path of an entry served by an NGSI-LD broker
    (``.../ngsi-ld/v1/jsonldContexts/{localId}``), else None. ``ours`` when it cannot be
    another broker's: a relative reference or a loopback host."""
    if url.startswith(PATH):
        rest, ours = url[len(PATH):], True
    elif url.startswith(("http://", "https://")):
        try:
            parts = urlsplit(url)
            host = parts.hostname
        except ValueError:
            return None
        if not parts.path.startswith(PATH) or parts.query or parts.fragment:
            return None
        rest, ours = parts.path[len(PATH):], host in _LOOPBACK
    else:
        return None
    rest = unquote(rest)
    if not rest or "/" in rest:
        return None
    return rest, ours


class Contexts:
    """Hosted, ImplicitlyCreated and Cached @contexts; installs itself as ``resolver``'s
    ``local``, ``on_load`` and ``on_use`` hooks."""

    def __init__(self, store: Store, resolver: ContextResolver) -> None:
        self.store = store
        self.resolver = resolver
        self._lock = threading.Lock()
        self._index: dict[str, dict[str, Any]] = {}  # localId -> stored document, any tenant
        self._cached: dict[str, float] = {}  # remote URL -> when it was downloaded
        self._cached_ids: dict[str, str] = {}  # its localId (sha256 of the URL) -> URL
        self._usage: dict[str, tuple[int, float]] = {}  # usage key -> (hits, last use)
        self._started = time.time()
        resolver.local = self.local_document
        resolver.on_load = self._loaded
        resolver.on_use = self.used

    # -- the resolver's hooks ------------------------------------------------------------------
    def local_document(self, url: str) -> tuple[str, Any] | None:
        """``(localId, @context value)`` for the URL of an entry kept here, else None."""
        found = local_id_of(url)
        if found is None:
            return None
        lid, ours = found
        if lid == CORE_ID:
            return CORE_ID, {}  # the core context is always applied
        doc = self._find(lid)
        if doc is not None:
            return lid, doc["context"]
        if ours:
            raise ContextError("LdContextNotAvailable", f"no @context {lid!r} is kept here")
        return None  # possibly another broker's: fetched like any URL

    def _find(self, lid: str) -> dict[str, Any] | None:
        with self._lock:
            doc = self._index.get(lid)
        if doc is not None:
            return doc
        # added by another replica, or before a restart: read them all again (a few rows)
        docs = {key: d for _t, key, d in self.store.reader().list_json(KIND, None)}
        with self._lock:
            self._index = docs
        return docs.get(lid)

    def _loaded(self, url: str, epoch: float) -> None:
        with self._lock:
            if url not in self._cached:
                self._cached[url] = epoch
                self._cached_ids[_digest(url)] = url

    def used(self, keys: tuple[str, ...]) -> None:
        """Count one use of each entry (by usage key) now."""
        now = time.time()
        with self._lock:
            for key in keys:
                hits = self._usage.pop(key, (0, 0.0))[0]
                self._usage[key] = (hits + 1, now)  # re-inserted: the dict stays in use order
            while len(self._usage) > _USAGE_LIMIT:
                del self._usage[next(iter(self._usage))]

    # -- reading -------------------------------------------------------------------------------
    def _core(self) -> Entry:
        return Entry(CORE_ID, CACHED, _iso(self._started), CORE_CONTEXT_URL,
                     load_core_context()["@context"], CORE_ID)

    @staticmethod
    def _local(lid: str, doc: dict[str, Any]) -> Entry:
        return Entry(lid, doc["kind"], doc["createdAt"], None, doc["context"], lid)

    def _cached_entry(self, url: str, epoch: float) -> Entry:
        return Entry(_digest(url), CACHED, _iso(epoch), url, None, url)

    def find(self, tenant: str, cid: str) -> Entry | None:
        """The entry ``cid`` names for ``tenant``: a localId; ``core`` or a core context URL;
        a Cached entry's original URL; or the URL of an entry served here."""
        if cid == CORE_ID or is_core_context_url(cid):
            return self._core()
        found = local_id_of(cid)
        lid = found[0] if found is not None else cid
        if lid == CORE_ID:
            return self._core()
        doc = self.store.reader().get_json(KIND, tenant, lid)
        if doc is not None:
            return self._local(lid, doc)
        with self._lock:
            url = cid if cid in self._cached else self._cached_ids.get(cid)
            epoch = self._cached.get(url) if url is not None else None
        if url is not None and epoch is not None:
            return self._cached_entry(url, epoch)
        return None

    def entries(self, tenant: str, kind: str | None = None) -> list[Entry]:
        """Every entry ``tenant`` sees (the core first, Cached, then its own by age)."""
        out: list[Entry] = []
        if kind in (None, CACHED):
            out.append(self._core())
            with self._lock:
                cached = sorted(self._cached.items(), key=lambda item: item[1])
            out += [self._cached_entry(url, epoch) for url, epoch in cached]
        if kind != CACHED:
            local = [self._local(key, d) for _t, key, d in self.store.reader().list_json(
                KIND, tenant) if kind is None or d["kind"] == kind]
            out += sorted(local, key=lambda e: e.created_at)
        return out

    def details(self, entry: Entry, url: str) -> dict[str, Any]:
        """The metadata of an entry (5.13.3.5) whose URL is ``url``."""
        out: dict[str, Any] = {"URL": url, "localId": entry.local_id, "kind": entry.kind,
                               "createdAt": entry.created_at}
        with self._lock:
            hits, last = self._usage.get(entry.usage_key, (0, 0.0))
        out["numberOfHits"] = hits
        if hits:
            out["lastUsage"] = _iso(last)
        return out

    # -- changes -------------------------------------------------------------------------------
    def check(self, value: Any) -> None:
        """A new entry's @context must be well formed and resolvable now (it may fetch the URLs
        it names, which become Cached). BadRequestData or LdContextNotAvailable."""
        check_context_value(value)
        try:
            self.resolver.resolve(value)
        except ContextError as exc:
            if exc.kind == "LdContextNotAvailable":
                raise LdContextNotAvailable(str(exc)) from None
            raise BadRequestData(f"invalid @context: {exc}") from None

    def add(self, tenant: str, actor: str, value: Any) -> str:
        """Keep a checked @context as a Hosted entry; its localId."""
        lid = uuid.uuid4().hex
        doc = {"kind": HOSTED, "createdAt": now_iso(), "context": value}

        def op(tx: Tx) -> None:
            tx.ensure_tenant(tenant)
            tx.put_json(KIND, tenant, lid, doc)
            tx.audit(tenant, actor, "jsonldContext.create", lid, {"kind": HOSTED})

        self.store.write(op)
        with self._lock:
            self._index[lid] = doc
        return lid

    def implicit(self, tenant: str, actor: str, value: Any) -> str:
        """The localId of the ImplicitlyCreated entry holding a checked @context: the same one
        for the same @context in a tenant, made when missing. Counts one use."""
        lid = _digest(orjson.dumps([tenant, value], option=orjson.OPT_SORT_KEYS).decode())[:32]

        def op(tx: Tx) -> dict[str, Any]:
            doc = tx.get_json(KIND, tenant, lid)
            if doc is None:
                doc = {"kind": IMPLICIT, "createdAt": now_iso(), "context": value}
                tx.ensure_tenant(tenant)
                tx.put_json(KIND, tenant, lid, doc)
                tx.audit(tenant, actor, "jsonldContext.create", lid, {"kind": IMPLICIT})
            return doc

        doc = self.store.write(op)
        with self._lock:
            self._index[lid] = doc
        self.used((lid,))
        return lid

    def delete(self, tenant: str, actor: str, entry: Entry) -> None:
        """Remove a Hosted or ImplicitlyCreated entry, or drop a Cached one (the next use
        loads it again); not the core context."""
        if entry.local_id == CORE_ID:
            raise BadRequestData("the core @context cannot be deleted")
        if entry.url is None:
            def op(tx: Tx) -> None:
                if not tx.delete_json(KIND, tenant, entry.local_id):
                    raise ResourceNotFound(f"no @context {entry.local_id}")
                tx.audit(tenant, actor, "jsonldContext.delete", entry.local_id,
                         {"kind": entry.kind})

            self.store.write(op)
            with self._lock:
                self._index.pop(entry.local_id, None)
                self._usage.pop(entry.usage_key, None)
            self.resolver.forget()
            return
        with self._lock:
            self._cached.pop(entry.url, None)
            self._cached_ids.pop(entry.local_id, None)
            self._usage.pop(entry.usage_key, None)
        self.resolver.forget(entry.url)
        self.store.write(lambda tx: tx.audit(tenant, actor, "jsonldContext.delete",
                                             entry.url or "", {"kind": CACHED}))

    def reload(self, tenant: str, actor: str, entry: Entry) -> None:
        """Download a Cached entry again and replace it (the core: nothing to do). When that
        fails the entry stays as it was: LdContextNotAvailable, status 504 (5.13.5.4)."""
        if entry.kind != CACHED:
            raise BadRequestData(f"only Cached @contexts can be reloaded; this one is {entry.kind}")
        if entry.url is None or entry.local_id == CORE_ID:
            return  # built in: never downloaded
        try:
            self.resolver.reload(entry.url)
        except ContextError as exc:
            err = LdContextNotAvailable(f"@context {entry.url} could not be reloaded: {exc}")
            err.status = 504
            raise err from None
        with self._lock:
            self._cached[entry.url] = time.time()
            self._usage.pop(entry.usage_key, None)
        self.store.write(lambda tx: tx.audit(tenant, actor, "jsonldContext.reload",
                                             entry.url or "", {"kind": CACHED}))


__all__ = ["CACHED", "CORE_ID", "HOSTED", "IMPLICIT", "KINDS", "PATH", "Contexts", "Entry",
           "check_context_value", "local_id_of", "needs_implicit"]
