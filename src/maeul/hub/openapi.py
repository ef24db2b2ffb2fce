"""The OpenAPI 3.1 document, derived from the routes so a route cannot go undocumented."""

from __future__ import annotations

import re
from typing import Any

from starlette.routing import Route

from .. import __version__

_PARAMS: dict[str, dict[str, Any]] = {
    "type": {"schema": {"type": "string"}, "description": "Entity types: A,B any; A;B all."},
    "id": {"schema": {"type": "string"}, "description": "Comma-separated entity ids (URIs)."},
    "idPattern": {"schema": {"type": "string"}, "description": "Regular expression on ids."},
    "attrs": {"schema": {"type": "string"}, "description": "Comma-separated attribute names."},
    "pick": {"schema": {"type": "string"}, "description": "Members to keep."},
    "omit": {"schema": {"type": "string"}, "description": "Members to drop."},
    "q": {"schema": {"type": "string"}, "description": "NGSI-LD query language filter."},
    "csf": {"schema": {"type": "string"}, "description": "Context source filter (q syntax)."},
    "scopeQ": {"schema": {"type": "string"}, "description": "Scope filter."},
    "georel": {"schema": {"type": "string"}, "description": "near;maxDistance==m, within ..."},
    "geometry": {"schema": {"type": "string"}, "description": "GeoJSON geometry type."},
    "coordinates": {"schema": {"type": "string"}, "description": "GeoJSON coordinates."},
    "geoproperty": {"schema": {"type": "string"}, "description": "GeoProperty to test."},
    "limit": {"schema": {"type": "integer", "minimum": 0}, "description": "Page size."},
    "offset": {"schema": {"type": "integer", "minimum": 0}, "description": "Page start."},
    "options": {"schema": {"type": "string"},
                "description": "count, keyValues, concise, sysAttrs, noOverwrite, ..."},
    "format": {"schema": {"type": "string"}, "description": "normalized, concise, keyValues."},
    "lang": {"schema": {"type": "string"}, "description": "Language for LanguageProperty."},
    "datasetId": {"schema": {"type": "string"}, "description": "Attribute instance dataset."},
    "deleteAll": {"schema": {"type": "boolean"}, "description": "Delete every instance."},
    "details": {"schema": {"type": "boolean"}, "description": "Detailed type/attr listing."},
    "kind": {"schema": {"type": "string", "enum": ["Hosted", "Cached", "ImplicitlyCreated"]},
             "description": "Kind of @context."},
    "reload": {"schema": {"type": "boolean"}, "description": "Download a Cached @context again."},
    "timerel": {"schema": {"type": "string", "enum": ["before", "after", "between"]},
                "description": "Temporal relation."},
    "timeAt": {"schema": {"type": "string", "format": "date-time"}, "description": "Time."},
    "endTimeAt": {"schema": {"type": "string", "format": "date-time"},
                  "description": "End time for between."},
    "timeproperty": {"schema": {"type": "string"}, "description": "observedAt or modifiedAt."},
    "lastN": {"schema": {"type": "integer", "minimum": 1}, "description": "Newest N."},
    "aggrMethods": {"schema": {"type": "string"}, "description": "avg,min,max,sum,..."},
    "aggrPeriodDuration": {"schema": {"type": "string"}, "description": "ISO 8601 duration."},
}
_QUERY_PARAMS = {
    ("/ngsi-ld/v1/entities", "get"): [
        "type", "id", "idPattern", "attrs", "pick", "omit", "q", "scopeQ", "georel",
        "geometry", "coordinates", "geoproperty", "limit", "offset", "options", "format",
        "lang",
    ],
    ("/ngsi-ld/v1/entities/{eid}", "get"): ["attrs", "pick", "omit", "options", "format",
                                            "lang"],
    ("/ngsi-ld/v1/entities/{eid}/attrs", "post"): ["options"],
    ("/ngsi-ld/v1/entities/{eid}/attrs/{attr}", "delete"): ["datasetId", "deleteAll"],
    ("/ngsi-ld/v1/types", "get"): ["details"],
    ("/ngsi-ld/v1/attributes", "get"): ["details"],
    ("/ngsi-ld/v1/subscriptions", "get"): ["limit", "offset", "options"],
    ("/ngsi-ld/v1/jsonldContexts", "get"): ["details", "kind"],
    ("/ngsi-ld/v1/jsonldContexts/{contextId}", "get"): ["details"],
    ("/ngsi-ld/v1/jsonldContexts/{contextId}", "delete"): ["reload"],
    ("/ngsi-ld/v1/csourceRegistrations", "get"): [
        "type", "id", "idPattern", "attrs", "q", "csf", "scopeQ", "georel", "geometry",
        "coordinates", "geoproperty", "timerel", "timeAt", "endTimeAt", "timeproperty", "limit",
        "offset", "options",
    ],
    ("/ngsi-ld/v1/csourceRegistrations/{rid}", "get"): ["options"],
    ("/ngsi-ld/v1/csourceSubscriptions", "get"): ["limit", "offset", "options"],
    ("/ngsi-ld/v1/temporal/entities", "get"): [
        "type", "id", "idPattern", "attrs", "q", "timerel", "timeAt", "endTimeAt",
        "timeproperty", "lastN", "limit", "offset", "options", "aggrMethods",
        "aggrPeriodDuration",
    ],
    ("/ngsi-ld/v1/temporal/entities/{eid}", "get"): [
        "attrs", "timerel", "timeAt", "endTimeAt", "timeproperty", "lastN", "options",
        "aggrMethods", "aggrPeriodDuration",
    ],
}
_PROBLEM = {
    "description": "ProblemDetails",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Problem"}}},
}


_URN = {"type": "string", "pattern": "^urn:ngsi-ld:[A-Za-z]{1,12}:[A-Za-z0-9]{1,12}$"}
_ATTRIBUTE: dict[str, Any] = {
    "type": "object",
    "properties": {
        "type": {"enum": ["Property", "Relationship", "GeoProperty", "LanguageProperty",
                          "VocabProperty", "ListProperty", "ListRelationship"]},
        "value": {},
        "object": {"type": "string"},
        "languageMap": {"type": "object"},
        "vocab": {"type": "string"},
        "valueList": {"type": "array"},
        "observedAt": {"type": "string", "format": "date-time"},
        "unitCode": {"type": "string"},
        "datasetId": {"type": "string"},
    },
}
_ENTITY: dict[str, Any] = {
    "type": "object",
    "required": ["id", "type"],
    "properties": {"id": _URN, "type": {"type": "string"},
                   "scope": {"type": "string"}},
    "additionalProperties": _ATTRIBUTE,
}
_FRAGMENT: dict[str, Any] = {"type": "object", "additionalProperties": _ATTRIBUTE}
_SUBSCRIPTION: dict[str, Any] = {
    "type": "object",
    "properties": {
        "type": {"enum": ["Subscription"]},
        "entities": {"type": "array", "items": {"type": "object", "properties": {
            "type": {"type": "string"}, "id": _URN, "idPattern": {"type": "string"}}}},
        "watchedAttributes": {"type": "array", "items": {"type": "string"}},
        "q": {"type": "string"},
        "geoQ": {"type": "object"},
        "throttling": {"type": "number"},
        "timeInterval": {"type": "number"},
        "expiresAt": {"type": "string", "format": "date-time"},
        "isActive": {"type": "boolean"},
        "notification": {"type": "object", "properties": {
            "attributes": {"type": "array", "items": {"type": "string"}},
            "format": {"enum": ["normalized", "concise", "keyValues"]},
            "endpoint": {"type": "object", "properties": {
                "uri": {"type": "string", "format": "uri"},
                "accept": {"type": "string"}}}}},
    },
}
_CSOURCE_REGISTRATION: dict[str, Any] = {
    "type": "object",
    "properties": {
        "type": {"enum": ["ContextSourceRegistration"]},
        "information": {"type": "array", "items": {"type": "object", "properties": {
            "entities": {"type": "array", "items": {"type": "object", "properties": {
                "type": {"type": "string"}, "id": _URN, "idPattern": {"type": "string"}}}},
            "propertyNames": {"type": "array", "items": {"type": "string"}},
            "relationshipNames": {"type": "array", "items": {"type": "string"}}}}},
        "endpoint": {"type": "string", "format": "uri"},
        "mode": {"enum": ["inclusive", "exclusive", "redirect", "auxiliary"]},
        "operations": {"type": "array", "items": {"type": "string"}},
        "expiresAt": {"type": "string", "format": "date-time"},
        "location": {"type": "object"},
        "management": {"type": "object"},
    },
}
_QUERY: dict[str, Any] = {
    "type": "object",
    "properties": {
        "type": {"enum": ["Query"]},
        "entities": {"type": "array", "items": {"type": "object", "properties": {
            "type": {"type": "string"}, "id": _URN, "idPattern": {"type": "string"}}}},
        "attrs": {"type": "array", "items": {"type": "string"}},
        "q": {"type": "string"},
        "geoQ": {"type": "object"},
        "temporalQ": {"type": "object"},
    },
}
_PATH_PARAMS: dict[str, dict[str, Any]] = {
    "eid": _URN,
    "sid": _URN,
    "rid": _URN,
    "op": {"type": "string", "enum": ["create", "upsert", "update", "delete", "merge",
                                      "query"]},
}


def _body_schema(path: str, method: str = "post") -> dict[str, Any]:
    if "/entityOperations/" in path:
        if path.endswith("query"):
            return _QUERY
        return {"type": "array", "items": {"anyOf": [_ENTITY, _URN]}}
    if path.endswith("/jsonldContexts"):
        return {"type": "object", "required": ["@context"], "properties": {"@context": {}}}
    if "/subscriptions" in path or "/csourceSubscriptions" in path:
        return _SUBSCRIPTION
    if "/csourceRegistrations" in path:
        return _CSOURCE_REGISTRATION
    if path.endswith(("/entities", "/temporal/entities")) or (
        path.endswith("/entities/{eid}") and method == "put"
    ):
        return _ENTITY
    if path.startswith("/ngsi-ld"):
        return _FRAGMENT if not path.endswith("{attr}") else _ATTRIBUTE
    return {"type": "object"}


def build_openapi(routes: list[Any]) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        if not isinstance(route, Route):
            continue
        path = re.sub(r"\{(\w+)(:\w+)?\}", r"{\1}", route.path)
        for method in sorted((route.methods or set()) - {"HEAD"}):
            m = method.lower()
            op: dict[str, Any] = {
                "operationId": f"{route.name}_{m}",
                "summary": (route.endpoint.__doc__ or route.name).strip().split("\n")[0],
                "responses": {
                    "200": {"description": "OK"},
                    "201": {"description": "Created"},
                    "204": {"description": "No content"},
                    "207": {"description": "Partial success"},
                    "400": _PROBLEM, "401": _PROBLEM, "403": _PROBLEM, "404": _PROBLEM,
                    "406": _PROBLEM, "409": _PROBLEM, "413": _PROBLEM, "415": _PROBLEM,
                    "422": _PROBLEM, "503": _PROBLEM,
                },
            }
            params: list[dict[str, Any]] = [
                {"name": p, "in": "path", "required": True,
                 "schema": _PATH_PARAMS.get(p, {"type": "string"})}
                for p in re.findall(r"\{(\w+)\}", path)
            ]
            params.append({"name": "NGSILD-Tenant", "in": "header", "required": False,
                           "schema": {"type": "string"}})
            for name in _QUERY_PARAMS.get((path, m), []):
                params.append({"name": name, "in": "query", "required": False, **_PARAMS[name]})
            op["parameters"] = params
            if m in ("post", "put", "patch") and path.startswith(("/ngsi-ld", "/ingest")):
                op["requestBody"] = {
                    "required": True,
                    "content": {"application/json": {"schema": _body_schema(path, m)}},
                }
            paths.setdefault(path, {})[m] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": "maeul city data hub (NGSI-LD)", "version": __version__},
        "paths": paths,
        "components": {
            "schemas": {
                "Problem": {
                    "type": "object",
                    "properties": {
                        "type": {"type": "string"}, "title": {"type": "string"},
                        "status": {"type": "integer"}, "detail": {"type": "string"},
                    },
                    "required": ["type", "title"],
                }
            },
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}, {}],
    }
