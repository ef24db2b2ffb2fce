"""HTTP routes of the trust layer's registry component."""

from __future__ import annotations

from typing import Any

from starlette.routing import BaseRoute


def routes(services: Any) -> list[BaseRoute]:
    return []
