"""The composition root: builds the store, context resolver, hub, subscriptions and keys."""

from __future__ import annotations

import logging
from typing import Any

from ..config import Settings
from .auth import Keys
from .compaction import View
from .core import Hub
from .ldcontext import ContextResolver
from .lifecycle import ExpiryIndex, ExpirySweeper
from .store.base import Entity, Store, open_store
from .subscriptions import Compiled, Subscriptions
from .temporal import DeletionRecorder, Temporal

log = logging.getLogger(__name__)


class Services:
    """Everything a running hub needs, wired once per process."""

    def __init__(self, settings: Settings, store: Store | None = None) -> None:
        self.settings = settings
        self.store = store or open_store(
            settings.store_url,
            synchronous=settings.sqlite_synchronous,
            group_commit_max=settings.group_commit_max,
            pool_size=settings.pg_pool_size,
            postgis=settings.pg_postgis,
        )
        preload: dict[str, Any] = {}
        if settings.context_preload_dir is not None:
            from ..ingest.sdm import sdm_context_preload

            preload = sdm_context_preload(settings.context_preload_dir)
        self.resolver = ContextResolver(
            settings.context_cache_dir,
            allow_fetch=settings.context_fetch,
            preload=preload,
        )
        from .contexts import Contexts

        self.contexts = Contexts(self.store, self.resolver)  # hooks itself into the resolver
        self.subs = Subscriptions(
            self.store,
            self.resolver,
            max_attempts=settings.notify_max_attempts,
            backoff_s=settings.notify_backoff_s,
            timeout_s=settings.notify_timeout_s,
        )
        self.hub = Hub(self.store, max_limit=settings.max_limit,
                       listeners=[self.subs, ExpiryIndex()])
        self.expiry = ExpirySweeper(self.hub, self.store, interval_s=settings.expiry_interval_s,
                                    chunk=settings.purge_chunk_entities)
        self.subs.interval_query = self._interval_query
        from .csource_subs import ContextSources

        self.csources = ContextSources(self.store, self.resolver, self.subs)
        self.temporal = Temporal(self.store)
        # deletions become instances in history, so the temporal API shows them (#2)
        self.hub.listeners.append(DeletionRecorder())
        self.keys = Keys(self.store)
        self.ingest: Any = None  # set by maeul.ingest when device ingest is enabled
        from ..trust.app import Trust

        self.trust = Trust(self)

    def _interval_query(self, tenant: str, doc: dict[str, Any], c: Compiled) -> list[Entity]:
        from .core import Query

        out: list[Entity] = []
        types = tuple(sorted({e["type"] for e in doc.get("entities", [])})) or None
        ents, _ = self.hub.query(tenant, Query(types=types, q=c.q, limit=self.settings.max_limit))
        for e in ents:
            if Subscriptions._selects(c, e):
                out.append(e)
        return out

    def start(self) -> None:
        self.subs.start()
        self.expiry.start()
        self.trust.start()

    def close(self) -> None:
        self.expiry.stop()
        self.subs.stop()
        self.trust.stop()
        if self.ingest is not None:
            self.ingest.stop()
        self.store.close()


__all__ = ["Services", "View"]
