"""Every setting, CLI command and API route is documented (a test fails when one is not)."""

from __future__ import annotations

import argparse
from pathlib import Path

from maeul.cli import build_parser
from maeul.config import Settings

DOCS = Path(__file__).resolve().parents[1] / "docs"


def test_every_setting_is_documented() -> None:
    text = (DOCS / "configuration.md").read_text()
    for name, field in Settings.model_fields.items():
        assert f"`{name}`" in text, f"setting {name} is missing from docs/configuration.md"
        assert field.description, f"setting {name} has no description"


def test_every_cli_command_is_documented() -> None:
    text = (DOCS / "cli.md").read_text()
    parser = build_parser()
    subs = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, sub in subs.choices.items():
        nested = [a for a in sub._actions if isinstance(a, argparse._SubParsersAction)]
        if nested:
            for child in nested[0].choices:
                assert f"maeul {name} {child}" in text, f"maeul {name} {child} is undocumented"
        else:
            assert f"maeul {name}" in text, f"maeul {name} is undocumented"


def test_every_route_is_documented(tmp_path: Path) -> None:
    import re

    from starlette.routing import Mount, Route

    from maeul.hub.server import build_app

    text = (DOCS / "api.md").read_text()
    app = build_app(Settings(store_url=f"sqlite:///{tmp_path}/d.db",
                             context_cache_dir=tmp_path / "c"))
    try:
        for route in app.routes:
            if isinstance(route, Mount) and route.path == "/static":
                continue  # the web's static files, not an API route
            assert isinstance(route, Route)
            path = re.sub(r"\{(\w+)(:\w+)?\}", r"{\1}", route.path)
            assert f"`{path}`" in text, f"route {path} is missing from docs/api.md"
    finally:
        app.state.services.close()
