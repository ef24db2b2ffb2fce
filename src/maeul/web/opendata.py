"""The open data catalogue: the tenant's public entity types, downloadable as JSON,
GeoJSON and CSV.

Only types the tenant made public (``maeul.hub.auth.Keys.set_public_types``) are listed, and
every entity is read as an anonymous caller would read it over the API: personal and
sensitive attributes are removed by the privacy policy before export, whoever downloads.
Attribute names are shortened to their last IRI segment (``averageVehicleSpeed``), the
form open data users expect; values are the NGSI-LD keyValues.
"""

from __future__ import annotations

import csv
import io
from typing import Any

import orjson

from ..hub.auth import ANONYMOUS
from ..hub.errors import BadRequestData, ResourceNotFound
from ..hub.store.base import EntityFilter
from .base import short_name

FORMATS = {"json": "application/json", "geojson": "application/geo+json",
           "csv": "text/csv; charset=utf-8"}
LOCATION = "https://uri.etsi.org/ngsi-ld/location"
MAX_ENTITIES = 50_000


def _simple(inst: dict[str, Any]) -> Any:
    for key in ("value", "object", "languageMap", "vocab", "json"):
        if key in inst:
            return inst[key]
    return None


def flatten(ent: dict[str, Any]) -> dict[str, Any]:
    """``{"id", "type", name: value ...}`` with short names (a clash keeps the full IRI)."""
    out: dict[str, Any] = {"id": ent["id"], "type": short_name(ent["type"][0])}
    for iri, insts in ent["attrs"].items():
        name = short_name(iri)
        if name in out:
            name = iri
        vals = [_simple(i) for i in insts]
        out[name] = vals[0] if len(vals) == 1 else vals
    return out


class OpenData:
    """Lists public types and exports their entities."""

    def __init__(self, services: Any) -> None:
        self.s = services

    def catalogue(self, tenant: str) -> list[dict[str, Any]]:
        """``[{"name", "types", "count"}]`` for every public type with entities."""
        public = self.s.keys.public_types(tenant)
        by_name: dict[str, dict[str, Any]] = {}
        for iri, count in sorted(self.s.store.count_types(tenant).items()):
            if iri not in public or not count:
                continue
            item = by_name.setdefault(short_name(iri), {"name": short_name(iri), "types": [],
                                                        "count": 0})
            item["types"].append(iri)
            item["count"] += count
        return sorted(by_name.values(), key=lambda d: d["name"])

    def entities(self, tenant: str, name: str) -> list[dict[str, Any]]:
        """The public view of every entity of the public type(s) called ``name``."""
        item = next((c for c in self.catalogue(tenant) if c["name"] == name), None)
        if item is None:
            raise ResourceNotFound(f"no public data set {name!r}")
        out = []
        for ent in self.s.store.query_entities(tenant, EntityFilter(types=tuple(item["types"]))):
            out.append(self.s.hub.visible(tenant, ANONYMOUS, ent))
            if len(out) >= MAX_ENTITIES:
                break
        return out

    def export(self, tenant: str, name: str, fmt: str) -> tuple[bytes, str]:
        """The data set as bytes in ``fmt`` and its media type."""
        if fmt not in FORMATS:
            raise BadRequestData(f"format: one of {', '.join(FORMATS)}")
        ents = [flatten(e) for e in self.entities(tenant, name)]
        if fmt == "json":
            return orjson.dumps(ents), FORMATS[fmt]
        if fmt == "geojson":
            feats = []
            for e in ents:
                geo = e.pop("location", None)
                feats.append({"type": "Feature", "id": e["id"],
                              "geometry": geo if isinstance(geo, dict) else None,
                              "properties": e})
            return orjson.dumps({"type": "FeatureCollection", "features": feats}), FORMATS[fmt]
        return to_csv(ents).encode("utf-8-sig"), FORMATS[fmt]


def to_csv(ents: list[dict[str, Any]]) -> str:
    """One row per entity: id, type, longitude, latitude (of a point), then the attributes
    in first-seen order; lists and objects as JSON text."""
    cols: dict[str, None] = {"id": None, "type": None, "longitude": None, "latitude": None}
    rows = []
    for e in ents:
        row = dict(e)
        geo = row.pop("location", None)
        if isinstance(geo, dict) and geo.get("type") == "Point":
            row["longitude"], row["latitude"] = geo["coordinates"][:2]
        elif geo is not None:
            row["location"] = geo
        for k in row:
            cols.setdefault(k, None)
        rows.append(row)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(list(cols))
    for row in rows:
        w.writerow([_cell(row.get(c)) for c in cols])
    return buf.getvalue()


def _cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, dict | list):
        return orjson.dumps(v).decode()
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str) and v[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + v  # a spreadsheet would run it as a formula
    return str(v)
