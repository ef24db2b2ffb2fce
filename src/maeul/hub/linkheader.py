"""The HTTP ``Link`` header that carries a JSON-LD ``@context`` (RFC 8288, JSON-LD 1.1)."""

from __future__ import annotations

import re
from typing import Final

from .ldterms import _bad

JSONLD_CONTEXT_REL: Final = "http://www.w3.org/ns/json-ld#context"


def link_header(url: str) -> str:
    """A ``Link`` header value pointing at a JSON-LD context."""
    return f'<{url}>; rel="{JSONLD_CONTEXT_REL}"; type="application/ld+json"'


_LINK_TARGET_RE: Final = re.compile(r"[ \t,]*<([^>]*)>")
_LINK_PARAM_RE: Final = re.compile(
    r'[ \t]*;[ \t]*([^\s=;,"]+)[ \t]*(?:=[ \t]*(?:"((?:[^"\\]|\\.)*)"|([^\s;,"]*)))?[ \t]*'
)
_LINK_SEP_RE: Final = re.compile(r"[ \t,]*")
_WS_RE: Final = re.compile(r"[ \t]*")
_QUOTED_PAIR_RE: Final = re.compile(r"\\(.)")


def _skip(pattern: re.Pattern[str], s: str, i: int) -> int:
    m = pattern.match(s, i)
    return i if m is None else m.end()


def _parse_links(value: str) -> list[tuple[str, dict[str, str]]]:
    """Split a Link header (RFC 8288) into ``(target, params)``; params are lower-cased names."""
    links: list[tuple[str, dict[str, str]]] = []
    i = _skip(_LINK_SEP_RE, value, 0)
    while i < len(value):
        target_m = _LINK_TARGET_RE.match(value, i)
        if target_m is None:
            raise _bad(f"malformed Link header: expected '<uri>' at position {i}")
        target = target_m.group(1).strip()
        if not target:
            raise _bad("malformed Link header: empty link target")
        i = target_m.end()
        params: dict[str, str] = {}
        while (param_m := _LINK_PARAM_RE.match(value, i)) is not None:
            name, quoted, token = param_m.groups()
            val = _QUOTED_PAIR_RE.sub(r"\1", quoted) if quoted is not None else token or ""
            params.setdefault(name.lower(), val)  # RFC 8288: later occurrences are ignored
            i = param_m.end()
        i = _skip(_WS_RE, value, i)
        if i < len(value) and value[i] != ",":
            raise _bad(f"malformed Link header: unexpected {value[i]!r} at position {i}")
        links.append((target, params))
        i = _skip(_LINK_SEP_RE, value, i)
    return links


def parse_link_header(value: str) -> str | None:
    """The URL of the JSON-LD context link in a ``Link`` header value, or None if there is none.

    Raises ``ContextError(kind="BadRequestData")`` when the header cannot be parsed or carries
    more than one JSON-LD context link (forbidden by JSON-LD 1.1 and NGSI-LD).
    """
    found: list[str] = []
    for target, params in _parse_links(value):
        rels = params.get("rel", "").split()
        if JSONLD_CONTEXT_REL in rels:
            found.append(target)
    if len(found) > 1:
        raise _bad("more than one JSON-LD context link in the Link header")
    return found[0] if found else None
