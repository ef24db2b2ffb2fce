"""Faster ``get`` for Starlette's request headers and query parameters.

Starlette's ``Headers`` and ``QueryParams`` take ``get`` from ``collections.abc.Mapping``,
which looks the key up with ``self[key]`` and catches the ``KeyError`` of a missing key.
A request reads a dozen names that are usually absent (``NGSILD-Tenant``, ``Link``, ``Via``,
``format``, ``attrs``, ``local``, ...), so every request raised and caught a dozen exceptions
(the before/after figures are in ``bench/README.md``).

``install()`` gives both classes a ``get`` that answers exactly what the Mapping one does (the
first header of that name, decoded as latin-1, case-insensitive; the last value of a query
parameter) without raising. It leaves a class alone where Starlette defines its own ``get`` or
stores its items differently, so an upgrade can only lose the speed, never change an answer.
"""

from __future__ import annotations

from typing import Any

from starlette import datastructures as _ds

_installed = False


def _headers_get(self: Any, key: str, default: Any = None) -> Any:
    want = key.lower().encode("latin-1")
    for name, value in self._list:
        if name == want:
            return value.decode("latin-1")
    return default


def _multidict_get(self: Any, key: Any, default: Any = None) -> Any:
    return self._dict.get(key, default)


def _plain_mapping(cls: type) -> bool:
    """True when ``cls`` still takes ``get`` from Mapping and keeps the storage we read."""
    return "get" not in {k for c in cls.__mro__[:-1] if c.__module__.startswith("starlette")
                         for k in vars(c)}


def install() -> bool:
    """Install the faster ``get`` (idempotent); False when Starlette's classes changed."""
    global _installed
    if _installed:
        return True
    ok = False
    probe_h = _ds.Headers(raw=[(b"a", b"1")])
    if _plain_mapping(_ds.Headers) and getattr(probe_h, "_list", None) == [(b"a", b"1")]:
        _ds.Headers.get = _headers_get  # type: ignore[method-assign]
        ok = True
    probe_q = _ds.QueryParams("a=1&a=2")
    if _plain_mapping(_ds.ImmutableMultiDict) and getattr(probe_q, "_dict", None) == {"a": "2"}:
        _ds.ImmutableMultiDict.get = _multidict_get  # type: ignore[method-assign]
        ok = ok and True
    else:
        ok = False
    _installed = ok
    return ok
