"""The NGSI-LD query language (ETSI GS CIM 009 v1.8 §4.9) and scope queries (§4.19).

The grammar, the tree and ``parse_q`` / ``parse_scope_q`` are in ``qparse.py``; ``compile_q``,
which turns a tree into a predicate over stored entities, is in ``qeval.py``. Both are
re-exported here, the module the rest of the hub imports.
"""

from __future__ import annotations

from .qeval import _elem_pred, _resolver, compile_q
from .qparse import (
    ENTITY_TIMESTAMPS,
    METADATA_MEMBERS,
    OPERATORS,
    AttrPath,
    QAnd,
    QList,
    QNode,
    QOr,
    QRange,
    QRegex,
    QScalar,
    QTerm,
    QueryError,
    QValue,
    attrs_in,
    parse_q,
    parse_scope_q,
)

__all__ = ["ENTITY_TIMESTAMPS", "METADATA_MEMBERS", "OPERATORS", "AttrPath", "QAnd", "QList",
           "QNode", "QOr", "QRange", "QRegex", "QScalar", "QTerm", "QValue", "QueryError",
           "_elem_pred", "_resolver", "attrs_in", "compile_q", "parse_q", "parse_scope_q"]
