"""JSON-LD term definitions: what a user ``@context`` member means for NGSI-LD names.

Split from ``ldcontext.py`` (which resolves whole contexts): the error type, and the rules that
turn raw context members into term definitions (IRIs, ``@type``, ``@container``, prefixes)
and read ``@vocab``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Final

DEFAULT_VOCAB: Final = "https://uri.etsi.org/ngsi-ld/default-context/"
_SCHEME_RE: Final = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*$")
# Schemes whose IRIs have no "//" but are still absolute (urn:ngsi-ld:..., did:..., ...).
_OPAQUE_SCHEMES: Final = frozenset({"urn", "did", "tag", "mailto", "data"})
_GEN_DELIMS: Final = frozenset(":/?#[]@")


class ContextError(ValueError):
    """A context could not be resolved.

    ``kind`` is the NGSI-LD problem type name: ``"LdContextNotAvailable"`` when a remote
    context could not be retrieved (and is not cached), ``"BadRequestData"`` when a context, a
    retrieved context document or a Link header is malformed (including cycles, excessive
    nesting and oversized documents).
    """

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True, slots=True)
class _Term:
    iri: str
    type: str | None = None
    container: tuple[str, ...] = ()
    prefix: bool = False  # usable as the prefix of a compact IRI


def _bad(message: str) -> ContextError:
    return ContextError("BadRequestData", message)


def _is_absolute(value: str) -> bool:
    """``scheme://...`` or an opaque scheme such as ``urn:``; the caller already saw the colon."""
    scheme, _, rest = value.partition(":")
    if not _SCHEME_RE.match(scheme):
        return False
    return rest.startswith("//") or scheme.lower() in _OPAQUE_SCHEMES


class _TermBuilder:
    """Creates term definitions from raw context members, resolving references between terms
    (prefixes, aliases) with cycle detection, like JSON-LD's "create term definition"."""

    def __init__(self, raw: dict[str, Any], vocab: str, known: dict[str, _Term]) -> None:
        self.raw = raw
        self.vocab = vocab
        self.known = known  # already resolved (the core terms), consulted for references
        self.done: dict[str, _Term | None] = {}
        self.active: set[str] = set()

    def build(self) -> dict[str, _Term]:
        out: dict[str, _Term] = {}
        for name in self.raw:
            term = self.term(name)
            if term is not None:
                out[name] = term
        return out

    def term(self, name: str) -> _Term | None:
        if name in self.done:
            return self.done[name]
        if name not in self.raw:
            return self.known.get(name)
        if name in self.active:
            raise _bad(f"cyclic IRI mapping for term {name!r} in @context")
        self.active.add(name)
        try:
            result = self._create(name, self.raw[name])
        finally:
            self.active.discard(name)
        self.done[name] = result
        return result

    def _create(self, name: str, spec: Any) -> _Term | None:
        if spec is None:
            return None  # explicitly unmapped: falls back to @vocab like an unknown term
        if isinstance(spec, str):
            iri = self.expand(spec, name)
            return _Term(iri, prefix=self._prefix_ok(name, iri))
        if not isinstance(spec, dict):
            raise _bad(f"invalid definition for term {name!r}: expected string or object")
        if "@reverse" in spec:
            return None  # reverse properties never name NGSI-LD attributes
        if "@id" in spec:
            raw_id = spec["@id"]
            if raw_id is None:
                return None
            if not isinstance(raw_id, str):
                raise _bad(f"invalid @id for term {name!r}: expected a string")
            iri = self.expand(raw_id, name)
        else:
            iri = self.expand(name, name)
        raw_type = spec.get("@type")
        if raw_type is not None and not isinstance(raw_type, str):
            raise _bad(f"invalid @type for term {name!r}: expected a string")
        if raw_type is not None and not raw_type.startswith("@"):
            raw_type = self.expand(raw_type, None)
        container = spec.get("@container")
        if isinstance(container, str):
            containers: tuple[str, ...] = (container,)
        elif isinstance(container, list) and all(isinstance(c, str) for c in container):
            containers = tuple(container)
        elif container is None:
            containers = ()
        else:
            raise _bad(f"invalid @container for term {name!r}")
        flag = spec.get("@prefix")
        prefix = flag is True or (flag is None and self._prefix_ok(name, iri))
        return _Term(iri, raw_type, containers, prefix)

    @staticmethod
    def _prefix_ok(name: str, iri: str) -> bool:
        return ":" not in name and "/" not in name and iri[-1:] in _GEN_DELIMS

    def expand(self, value: str, defining: str | None) -> str:
        """Expand an IRI inside a definition: keywords stay, compact IRIs use defined prefixes,
        a term reference resolves to that term, anything else is relative to @vocab."""
        if value.startswith("@"):
            return value
        if ":" in value:
            prefix, _, suffix = value.partition(":")
            if prefix == "_" or suffix.startswith("//"):
                return value
            if prefix != defining:
                pterm = self.term(prefix)
                if pterm is not None and not pterm.iri.startswith("@"):
                    return pterm.iri + suffix
            return value
        if value != defining:
            ref = self.term(value)
            if ref is not None:
                return ref.iri
        return self.vocab + value


def _parse_vocab(value: Any, terms: dict[str, _Term]) -> str:
    if value is None:
        # JSON-LD would leave no vocabulary at all; NGSI-LD needs one, so fall back to the
        # default namespace instead of rejecting every unmapped name.
        return DEFAULT_VOCAB
    if not isinstance(value, str) or not value:
        raise _bad("@vocab must be a non-empty IRI string")
    if ":" in value:
        prefix, _, suffix = value.partition(":")
        term = terms.get(prefix)
        if term is not None and term.prefix and not suffix.startswith("//"):
            return term.iri + suffix
        if _is_absolute(value):
            return value
    elif value in terms:
        return terms[value].iri
    raise _bad(f"@vocab {value!r} is not an absolute IRI")
