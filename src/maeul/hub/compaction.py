"""Entities on the way out: the stored (expanded) form compacted with the requester's
@context, as normalized, concise or keyValues, with attribute selection (``attrs``, ``pick``,
``omit``), language maps (``lang``), datasets and system attributes."""

from __future__ import annotations

from typing import Any

from .entities import META, SYS, Entity, TermContext
from .errors import InvalidRequest


class View:
    """How an entity is shown: format, attribute selection, language, system attributes."""

    def __init__(
        self,
        ctx: TermContext,
        fmt: str = "normalized",
        attrs: set[str] | None = None,
        pick: set[str] | None = None,
        omit: set[str] | None = None,
        lang: str | None = None,
        sys_attrs: bool = False,
        datasets: set[str] | None = None,
    ) -> None:
        if fmt not in ("normalized", "concise", "keyValues", "simplified"):
            raise InvalidRequest(f"unknown format {fmt!r}")
        self.ctx = ctx
        self.fmt = "keyValues" if fmt == "simplified" else fmt
        self.attrs = attrs
        self.pick = pick
        self.omit = omit
        self.lang = lang
        self.sys_attrs = sys_attrs
        # datasetId filter: the instances shown ("" is the default instance, `@none`)
        self.datasets = datasets
        # linked-entity projections (`pick=rel{a,b}`): relationship name -> its projection
        self.linked_pick: dict[str, Any] | None = None
        self.linked_omit: dict[str, Any] | None = None

    def entity(self, ent: Entity) -> dict[str, Any]:
        ctx = self.ctx
        out: dict[str, Any] = {"id": ent["id"]}
        types = [ctx.compact_iri(t) for t in ent["type"]]
        out["type"] = types[0] if len(types) == 1 else types
        if ent.get("scope"):
            sc = ent["scope"]
            out["scope"] = sc[0] if len(sc) == 1 else sc
        if self.sys_attrs:
            for k in SYS:
                if k in ent:
                    out[k] = ent[k]
        if "expiresAt" in ent:
            out["expiresAt"] = ent["expiresAt"]
        for iri, insts in ent.get("attrs", {}).items():
            if self.attrs is not None and iri not in self.attrs:
                continue
            if self.datasets is not None:
                insts = [i for i in insts if i.get("datasetId", "") in self.datasets]
                if not insts:
                    continue
            name = ctx.compact_iri(iri)
            shown = [self.attribute(i) for i in insts]
            out[name] = shown[0] if len(shown) == 1 else shown
        if self.pick is not None:
            out = {k: v for k, v in out.items() if k in self.pick}
        if self.omit is not None:
            out = {k: v for k, v in out.items() if k not in self.omit}
        return out

    def attribute(self, a: dict[str, Any], depth: int = 0) -> Any:
        typ = a.get("type")
        if self.fmt == "keyValues":
            return self._simple(a)
        out: dict[str, Any] = {}
        for key, val in a.items():
            if key in META:
                if key in SYS and not self.sys_attrs:
                    continue
                if key == "vocab":
                    val = (
                        [self.ctx.compact_value_vocab(v) for v in val]
                        if isinstance(val, list)
                        else self.ctx.compact_value_vocab(val)
                    )
                out[key] = val
            else:
                out[self.ctx.compact_iri(key)] = self.attribute(val, depth + 1)
        if typ == "LanguageProperty" and self.lang is not None:
            lm = out.pop("languageMap", {})
            code, text = _pick_lang(lm, self.lang)
            out["type"] = "Property"
            out["value"] = text
            out["lang"] = code
        if self.fmt == "concise":
            if out.get("type") in ("Property", "Relationship", "LanguageProperty",
                                   "VocabProperty", "ListProperty", "ListRelationship",
                                   "JsonProperty"):
                out.pop("type")
            elif out.get("type") == "GeoProperty":
                out.pop("type")
            if set(out) == {"value"} and not isinstance(out["value"], dict):
                return out["value"]
        return out

    def _simple(self, a: dict[str, Any]) -> Any:
        typ = a.get("type")
        if typ == "Relationship":
            return a.get("object")
        if typ == "LanguageProperty":
            lm = a.get("languageMap", {})
            if self.lang is not None:
                return _pick_lang(lm, self.lang)[1]
            return {"languageMap": lm}
        if typ == "VocabProperty":
            v = a.get("vocab")
            return [self.ctx.compact_value_vocab(x) for x in v] if isinstance(
                v, list
            ) else self.ctx.compact_value_vocab(str(v))
        if typ == "ListProperty":
            return a.get("valueList")
        if typ == "ListRelationship":
            return [i.get("object") if isinstance(i, dict) else i for i in a.get("objectList", [])]
        if typ == "JsonProperty":
            return {"json": a.get("json")}  # keyValues keeps it apart from a value (4.5.24)
        return a.get("value")


def _pick_lang(lm: dict[str, Any], wanted: str) -> tuple[str, Any]:
    """Best language for a `lang` parameter such as `ko`, `en,ko;q=0.5` or `*`."""
    prefs: list[tuple[float, str]] = []
    for part in wanted.split(","):
        bits = part.strip().split(";")
        q = 1.0
        for b in bits[1:]:
            if b.strip().startswith("q="):
                try:
                    q = float(b.strip()[2:])
                except ValueError:
                    q = 0.0
        prefs.append((q, bits[0].strip()))
    for _q, code in sorted(prefs, key=lambda p: -p[0]):
        if code == "*" and lm:
            k = next(iter(lm))
            return k, lm[k]
        if code in lm:
            return code, lm[code]
        for k in lm:
            if k.split("-")[0] == code.split("-")[0]:
                return k, lm[k]
    if "@none" in lm:
        return "@none", lm["@none"]
    if lm:
        k = next(iter(lm))
        return k, lm[k]
    return "", None
