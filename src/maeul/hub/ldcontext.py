"""Term-level JSON-LD ``@context`` handling for the NGSI-LD API.

The hub does not run a full JSON-LD processor. NGSI-LD payloads only need *names* translated:
attribute names, entity type names and ``VocabProperty`` values are expanded to IRIs on the way
in and compacted again on the way out (see ``docs/internals.md``). This module resolves an
``@context`` (inline objects, URLs, lists of both) into an immutable :class:`Context` that does
exactly that, with every result memoised because it runs on every request.

Rules, following JSON-LD 1.1 where it matters for names:

* The NGSI-LD core context is always applied underneath the user contexts, and its terms cannot
  be redefined (the core context is ``@protected``; NGSI-LD says the core definitions win, so a
  conflicting user definition is silently ignored rather than rejected).
* Only term definitions and ``@vocab`` are interpreted; other keywords (``@version``,
  ``@protected``, ``@base``, ``@language``, ``@import``, scoped contexts, ...) are ignored.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Final

import httpx
import orjson

from .ldterms import (
    DEFAULT_VOCAB,
    ContextError,
    _bad,
    _is_absolute,
    _parse_vocab,
    _Term,
    _TermBuilder,
)
from .linkheader import JSONLD_CONTEXT_REL, link_header, parse_link_header

__all__ = [
    "CORE_CONTEXT_URL",
    "DEFAULT_VOCAB",
    "JSONLD_CONTEXT_REL",
    "Context",
    "ContextError",
    "ContextResolver",
    "is_core_context_url",
    "link_header",
    "load_core_context",
    "parse_link_header",
]

log = logging.getLogger(__name__)

CORE_CONTEXT_URL: Final = "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.8.jsonld"

# Every published core context (unversioned, v1.3 ... v1.9) is served by the built-in one: the
# term IRIs never changed between versions, and the hub must work without network access.
_CORE_URL_RE: Final = re.compile(
    r"^https?://uri\.etsi\.org/ngsi-ld/v1/ngsi-ld-core-context(?:-v1\.\d+(?:\.\d+)?)?\.jsonld$"
)

MAX_REMOTE_DEPTH: Final = 8
_MEMO_LIMIT: Final = 20_000  # per Context; cleared when exceeded so odd input cannot grow it
_DOC_CACHE_SIZE: Final = 1024
_CORE_KEY_SALT: Final = "ngsi-ld-core-v1.8"
_MISSING: Final[Any] = object()  # "not cached"; a document's @context may legitimately be null

#: ``local(url)`` -> ``(key, @context value)`` for a document the hub keeps itself, else None
LocalLookup = Callable[[str], "tuple[str, Any] | None"]


def is_core_context_url(url: str) -> bool:
    """True for any published NGSI-LD core context URL (served locally, never fetched)."""
    return _CORE_URL_RE.match(url) is not None


@cache
def _core_document_bytes() -> bytes:
    return resources.files("maeul.hub").joinpath("core_context.jsonld").read_bytes()


def load_core_context() -> dict[str, Any]:
    """The built-in core context document (``{"@context": {...}}``); a fresh copy each call."""
    doc = orjson.loads(_core_document_bytes())
    if not isinstance(doc, dict):  # pragma: no cover - package data is ours
        raise RuntimeError("core_context.jsonld is not a JSON object")
    return doc


@cache
def _core_terms() -> dict[str, _Term]:
    ctx = load_core_context()["@context"]
    raw = {k: v for k, v in ctx.items() if not k.startswith("@")}
    return _TermBuilder(raw, DEFAULT_VOCAB, {}).build()


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Context:
    """An immutable, resolved context: the core context plus the user's terms.

    ``key`` hashes what influences expansion and compaction (the user term definitions and the
    vocabulary), so equal contexts share a key whatever their ``source``; ``source`` is the
    original ``@context`` value, to be echoed back in responses.
    """

    __slots__ = (
        "_terms",
        "_vocab",
        "_prefixes",
        "_reverse",
        "_expand_memo",
        "_compact_memo",
        "_key",
        "_source",
        "_core_only",
    )

    def __init__(self, user_terms: dict[str, _Term], vocab: str | None, source: Any) -> None:
        core = _core_terms()
        terms = {k: v for k, v in user_terms.items() if k not in core}
        self._core_only = not terms and vocab is None
        terms.update(core)
        self._terms: dict[str, _Term] = terms
        self._vocab = vocab or DEFAULT_VOCAB
        self._source = source
        self._prefixes = {name: t.iri for name, t in terms.items() if t.prefix}
        reverse: dict[str, str] = {}
        for name, t in terms.items():
            best = reverse.get(t.iri)
            if best is None or (len(name), name) < (len(best), best):
                reverse[t.iri] = name
        self._reverse = reverse
        self._expand_memo: dict[str, str] = {}
        self._compact_memo: dict[str, str] = {}
        canon = {
            "salt": _CORE_KEY_SALT,
            "vocab": self._vocab,
            "terms": {
                k: [t.iri, t.type, list(t.container), t.prefix]
                for k, t in user_terms.items()
                if k not in core
            },
        }
        self._key = _digest(orjson.dumps(canon, option=orjson.OPT_SORT_KEYS))

    @property
    def key(self) -> str:
        return self._key

    @property
    def source(self) -> Any:
        return self._source

    @property
    def is_core_only(self) -> bool:
        """True when no user term or @vocab applies (only the core context)."""
        return self._core_only

    @property
    def vocab(self) -> str:
        """The active vocabulary: the user's ``@vocab`` if set, else :data:`DEFAULT_VOCAB`."""
        return self._vocab

    def __repr__(self) -> str:
        return f"Context(key={self._key[:12]}, core_only={self._core_only})"

    def term_definition(self, term: str) -> tuple[str, str | None, tuple[str, ...]] | None:
        """``(iri, @type, @container)`` of a defined term, or None."""
        t = self._terms.get(term)
        return None if t is None else (t.iri, t.type, t.container)

    def expand_term(self, term: str) -> str:
        """Expand an attribute or type name to an IRI.

        A defined term gives its IRI; ``prefix:suffix`` with a defined prefix expands; an
        absolute IRI (``scheme://...``, ``urn:...``) is returned as is; anything else is
        appended to the active vocabulary.
        """
        hit = self._expand_memo.get(term)
        if hit is not None:
            return hit
        result = self._expand(term)
        memo = self._expand_memo
        if len(memo) >= _MEMO_LIMIT:
            memo.clear()
        memo[term] = result
        return result

    def _expand(self, term: str) -> str:
        t = self._terms.get(term)
        if t is not None:
            return t.iri
        if ":" in term:
            prefix, _, suffix = term.partition(":")
            if not suffix.startswith("//"):
                base = self._prefixes.get(prefix)
                if base is not None:
                    return base + suffix
            if prefix == "_" or _is_absolute(term):
                return term
        return self._vocab + term

    def compact_iri(self, iri: str) -> str:
        """Compact an IRI for output; the inverse of :meth:`expand_term`.

        The shortest term mapping to the IRI; else the suffix relative to the active vocabulary;
        else the shortest compact IRI with a defined prefix; else the IRI unchanged. A
        candidate is only used if it expands back to the same IRI.
        """
        hit = self._compact_memo.get(iri)
        if hit is not None:
            return hit
        result = self._compact(iri)
        memo = self._compact_memo
        if len(memo) >= _MEMO_LIMIT:
            memo.clear()
        memo[iri] = result
        return result

    def _compact(self, iri: str) -> str:
        term = self._reverse.get(iri)
        if term is not None:
            return term
        vocab = self._vocab
        if iri.startswith(vocab) and len(iri) > len(vocab):
            short = iri[len(vocab) :]
            if self._expand(short) == iri:
                return short
        best: str | None = None
        for prefix, base in self._prefixes.items():
            if len(iri) > len(base) and iri.startswith(base):
                candidate = f"{prefix}:{iri[len(base) :]}"
                if (best is None or (len(candidate), candidate) < (len(best), best)) and (
                    self._expand(candidate) == iri
                ):
                    best = candidate
        return best if best is not None else iri

    def expand_value_vocab(self, value: str) -> str:
        """Expand a ``VocabProperty`` value (``@type: @vocab``): same rules as terms."""
        return self.expand_term(value)

    def compact_value_vocab(self, value: str) -> str:
        """Compact a ``VocabProperty`` value: same rules as :meth:`compact_iri`."""
        return self.compact_iri(value)


def _build_context(contexts: list[dict[str, Any]], source: Any) -> Context:
    core = _core_terms()
    raw: dict[str, Any] = {}
    vocab_raw: Any = None
    vocab_set = False
    for ctx in contexts:
        for name, spec in ctx.items():
            if name.startswith("@"):
                if name == "@vocab":
                    vocab_raw, vocab_set = spec, True
                continue
            if not name:
                raise _bad("empty term name in @context")
            if name in core:
                continue  # core terms win (protected core context)
            raw[name] = spec
    # Like JSON-LD, @vocab is expanded against what is already active (the core terms).
    user_vocab = _parse_vocab(vocab_raw, core) if vocab_set and vocab_raw is not None else None
    user = _TermBuilder(raw, user_vocab or DEFAULT_VOCAB, core).build()
    return Context(user, user_vocab, source)


class ContextResolver:
    """Resolves ``@context`` values to :class:`Context` objects, fetching remote contexts once.

    Remote documents are kept in memory and, with ``cache_dir``, on disk as
    ``sha256(url).jsonld`` (written atomically), so after a first fetch -- or with a pre-seeded
    folder -- resolution works offline. ``preload`` maps URL to a document (``{"@context": ...}``)
    that is used without any I/O. With ``allow_fetch=False`` only memory, preload and disk are
    consulted. Safe to call from several threads; no lock is held during network I/O.

    Three optional hooks serve the @context store (``maeul.hub.contexts``): ``local`` resolves
    URLs of documents the hub keeps itself before any cache or fetch; ``on_load(url, epoch)``
    hears of each remote document taken into memory (``epoch``: when it was downloaded);
    ``on_use(keys)`` hears which documents a ``resolve(..., count=True)`` used (remote URLs,
    and the keys ``local`` returned), on every call, memoised or not.
    """

    def __init__(
        self,
        cache_dir: Path | None,
        allow_fetch: bool = True,
        timeout_s: float = 5.0,
        max_bytes: int = 1_000_000,
        preload: dict[str, Any] | None = None,
        max_contexts: int = 256,
    ) -> None:
        self.cache_dir = cache_dir
        self.allow_fetch = allow_fetch
        self.timeout_s = timeout_s
        self.max_bytes = max_bytes
        self._max_contexts = max_contexts
        self._lock = threading.Lock()
        self._contexts: OrderedDict[str, Context] = OrderedDict()
        self._docs: OrderedDict[str, Any] = OrderedDict()  # url -> its @context value
        self._inflight: dict[str, threading.Lock] = {}
        self._used: dict[str, tuple[str, ...]] = {}  # resolve cache key -> documents it used
        self.local: LocalLookup | None = None
        self.on_load: Callable[[str, float], None] | None = None
        self.on_use: Callable[[tuple[str, ...]], None] | None = None
        self._preload: dict[str, Any] = {}
        for url, doc in (preload or {}).items():
            self._preload[url] = self._context_member(url, doc)

    def resolve(self, value: Any, count: bool = False) -> Context:
        """Resolve an ``@context`` value: None (core only), a URL, an inline object, or a list.

        With ``count`` the documents it uses are reported to ``on_use`` (a request used them).
        Raises :class:`ContextError`.
        """
        if value is None:
            cache_key = "n"
        elif isinstance(value, str):
            cache_key = "s" + value
        else:
            try:
                cache_key = "j" + orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
            except (TypeError, orjson.JSONEncodeError) as exc:
                raise _bad(f"@context is not valid JSON: {exc}") from exc
        with self._lock:
            hit = self._contexts.get(cache_key)
            if hit is not None:
                self._contexts.move_to_end(cache_key)
                used = self._used.get(cache_key, ())
        if hit is not None:
            if count and used and self.on_use is not None:
                self.on_use(used)
            return hit
        collected: list[dict[str, Any]] = []
        visited: list[str] = []
        self._collect(value, (), collected, visited)
        ctx = _build_context(collected, value)
        used = tuple(dict.fromkeys(visited))
        with self._lock:
            self._contexts[cache_key] = ctx
            self._contexts.move_to_end(cache_key)
            if used:
                self._used[cache_key] = used
            while len(self._contexts) > self._max_contexts:
                old, _ = self._contexts.popitem(last=False)
                self._used.pop(old, None)
        if count and used and self.on_use is not None:
            self.on_use(used)
        return ctx

    def _collect(
        self, value: Any, chain: tuple[str, ...], out: list[dict[str, Any]], used: list[str]
    ) -> None:
        """Flatten a context value into term-definition objects, in application order."""
        if value is None:
            out.clear()  # JSON-LD: null resets the active context (the core stays underneath)
        elif isinstance(value, str):
            if is_core_context_url(value):
                return
            if value in chain:
                raise _bad(f"recursive @context inclusion: {' -> '.join((*chain, value))}")
            if len(chain) >= MAX_REMOTE_DEPTH:
                raise _bad(f"@context nesting deeper than {MAX_REMOTE_DEPTH} remote documents")
            local = self.local(value) if self.local is not None else None
            if local is not None:
                key, member = local
            else:
                key, member = value, self._document_context(value)
            used.append(key)
            self._collect(member, (*chain, value), out, used)
        elif isinstance(value, list):
            for item in value:
                self._collect(item, chain, out, used)
        elif isinstance(value, dict):
            if "@context" in value:
                # A whole document was given where a context was expected: use its @context.
                self._collect(value["@context"], chain, out, used)
            else:
                out.append(value)
        else:
            raise _bad("@context must be a URL string, an object, or an array of those")

    # -- remote documents -------------------------------------------------------------------

    def _context_member(self, url: str, doc: Any) -> Any:
        if isinstance(doc, dict) and "@context" in doc:
            return doc["@context"]
        raise _bad(f"document at {url} has no @context member")

    def cache_path(self, url: str) -> Path | None:
        """Where the disk cache keeps ``url`` (None without a cache folder)."""
        if self.cache_dir is None:
            return None
        return self.cache_dir / (_digest(url.encode()) + ".jsonld")

    def _document_context(self, url: str) -> Any:
        if not url.startswith(("http://", "https://")):
            raise _bad(f"@context entry {url!r} is not an absolute http(s) URL")
        member = self._memory_document(url)
        if member is not _MISSING:
            return member
        with self._lock:
            url_lock = self._inflight.setdefault(url, threading.Lock())
        # One loader per URL: concurrent first requests for a new context wait for a single
        # fetch instead of all hitting the remote server. Only this URL's lock is held here.
        try:
            with url_lock:
                member = self._memory_document(url)
                if member is not _MISSING:
                    return member  # loaded by the one we waited for
                member = self._read_disk(url)
                if member is not _MISSING:
                    loaded_at = self._disk_time(url)
                else:
                    if not self.allow_fetch:
                        raise ContextError(
                            "LdContextNotAvailable",
                            f"@context {url} is not cached and fetching is disabled",
                        )
                    body = self._fetch(url)
                    member, loaded_at = self._parse_document(url, body), time.time()
                    self._write_disk(url, body)
                self._keep(url, member, loaded_at)
        finally:
            with self._lock:
                self._inflight.pop(url, None)
        return member

    def _keep(self, url: str, member: Any, loaded_at: float) -> None:
        with self._lock:
            self._docs[url] = member
            self._docs.move_to_end(url)
            while len(self._docs) > _DOC_CACHE_SIZE:
                self._docs.popitem(last=False)
        if self.on_load is not None:
            self.on_load(url, loaded_at)

    def _disk_time(self, url: str) -> float:
        path = self.cache_path(url)
        try:
            return path.stat().st_mtime if path is not None else time.time()
        except OSError:
            return time.time()

    def forget(self, url: str | None = None) -> None:
        """Drop the copy of remote ``url`` from memory and the disk cache (documents given as
        ``preload`` stay), and every memoised resolution, so later ones load again; with no
        ``url`` only the resolutions go (after a document ``local`` serves was removed)."""
        with self._lock:
            self._contexts.clear()
            self._used.clear()
            if url is not None:
                self._docs.pop(url, None)
        path = self.cache_path(url) if url is not None else None
        if path is not None:
            try:
                path.unlink(missing_ok=True)
            except OSError as exc:  # a read-only (pre-seeded) cache keeps its copy
                log.warning("cannot remove cached @context %s: %s", path, exc)

    def reload(self, url: str) -> None:
        """Download ``url`` again and replace the kept copy; on any failure (ContextError) the
        old copy stays as it was."""
        if not url.startswith(("http://", "https://")):
            raise _bad(f"@context {url!r} is not an absolute http(s) URL")
        if not self.allow_fetch:
            raise ContextError("LdContextNotAvailable", f"fetching is disabled; {url} kept")
        body = self._fetch(url)
        member = self._parse_document(url, body)
        self._write_disk(url, body)
        self._keep(url, member, time.time())
        with self._lock:
            self._contexts.clear()
            self._used.clear()

    def _memory_document(self, url: str) -> Any:
        with self._lock:
            if url in self._docs:
                self._docs.move_to_end(url)
                return self._docs[url]
            member = self._preload.get(url, _MISSING)
        if member is not _MISSING:
            self._keep(url, member, time.time())  # a preloaded document's first use
        return member

    def _parse_document(self, url: str, body: bytes) -> Any:
        if len(body) > self.max_bytes:
            raise _bad(f"@context document {url} exceeds {self.max_bytes} bytes")
        try:
            doc = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise _bad(f"@context document {url} is not valid JSON: {exc}") from exc
        return self._context_member(url, doc)

    def _read_disk(self, url: str) -> Any:
        """The cached @context value of ``url``, or ``_MISSING``."""
        path = self.cache_path(url)
        if path is None:
            return _MISSING
        try:
            body = path.read_bytes()
        except FileNotFoundError:
            return _MISSING
        except OSError as exc:
            log.warning("cannot read cached @context %s: %s", path, exc)
            return _MISSING
        try:
            return self._parse_document(url, body)
        except ContextError as exc:
            # A corrupt cache file must not pin an error forever; refetch if allowed.
            log.warning("ignoring cached @context %s: %s", path, exc)
            return _MISSING

    def _write_disk(self, url: str, body: bytes) -> None:
        path = self.cache_path(url)
        if path is None:
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".ctx-", suffix=".tmp")
            try:
                with os.fdopen(fd, "wb") as fh:
                    fh.write(body)
                os.replace(tmp, path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError as exc:
            # The context itself was fetched fine; a read-only cache only costs refetches.
            log.warning("cannot cache @context %s in %s: %s", url, path, exc)

    def _fetch(self, url: str) -> bytes:
        headers = {"Accept": "application/ld+json, application/json;q=0.9"}
        try:
            with httpx.Client(timeout=self.timeout_s, follow_redirects=True) as client:
                with client.stream("GET", url, headers=headers) as resp:
                    if resp.status_code != 200:
                        raise ContextError(
                            "LdContextNotAvailable",
                            f"@context {url} could not be retrieved: HTTP {resp.status_code}",
                        )
                    declared = resp.headers.get("content-length")
                    if declared is not None and declared.isdigit():
                        if int(declared) > self.max_bytes:
                            raise _bad(f"@context document {url} exceeds {self.max_bytes} bytes")
                    chunks: list[bytes] = []
                    size = 0
                    for chunk in resp.iter_bytes():
                        size += len(chunk)
                        if size > self.max_bytes:
                            raise _bad(f"@context document {url} exceeds {self.max_bytes} bytes")
                        chunks.append(chunk)
        except ContextError:
            raise
        except (httpx.HTTPError, httpx.InvalidURL, httpx.StreamError, ValueError) as exc:
            raise ContextError(
                "LdContextNotAvailable", f"@context {url} could not be retrieved: {exc}"
            ) from exc
        return b"".join(chunks)
