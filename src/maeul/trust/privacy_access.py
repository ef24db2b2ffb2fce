"""Purpose-bound reads: which attributes a caller may see, and the audit of sensitive reads.

Installed as a hub ``AccessGuard`` (``Hub.access_guards``, ``Subscriptions.access_guards``).
Rules: a sensitive attribute is shown only to a key holding one of the purposes its type
allows, whatever the key's role (purpose binding is about purpose, not rank); a personal
attribute is shown to any key with the read right but never to anonymous callers; public
attributes are shown to everyone who may read the entity.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..hub.store.base import Tx
from .events import SensitiveRead, emit
from .privacy_policy import Policy


class ReadRules:
    """The ``AccessGuard`` of the privacy component."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy

    def hides(self, tenant: str, caller: Any, types: list[str]) -> Callable[[str], bool] | None:
        rules = self.policy.rules(types)
        if not rules.keyed:
            return None
        purposes: frozenset[str] = caller.purposes
        anonymous: bool = caller.anonymous

        def hide(iri: str) -> bool:
            rule = rules.rule(iri)
            if rule is None:
                return False
            if rule.cls == "sensitive":
                return not (rule.purposes & purposes)
            return rule.cls == "personal" and anonymous

        return hide

    def sensitive(self, types: list[str], attrs: list[str]) -> tuple[list[str], frozenset[str]]:
        """The sensitive attributes among ``attrs`` and the purposes that may read them all."""
        rules = self.policy.rules(types)
        names: list[str] = []
        allowed: frozenset[str] | None = None
        for a in attrs:
            rule = rules.rule(a)
            if rule is not None and rule.cls == "sensitive":
                names.append(a)
                allowed = rule.purposes if allowed is None else allowed & rule.purposes
        return sorted(names), allowed or frozenset()

    def reads(
        self, tenant: str, caller: Any, shown: list[tuple[str, list[str], list[str]]]
    ) -> Callable[[Tx], None] | None:
        events = []
        for eid, types, attrs in shown:
            names, allowed = self.sensitive(types, attrs)
            if names:
                purpose = ",".join(sorted(allowed & caller.purposes))
                events.append(SensitiveRead(tenant, caller.actor, eid, purpose=purpose,
                                            attrs=names))
        if not events:
            return None

        def record(tx: Tx) -> None:
            for ev in events:
                emit(tx, ev)

        return record
