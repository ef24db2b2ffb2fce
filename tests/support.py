"""Helpers shared by test modules (imported as ``support``; a nested conftest.py would shadow
helpers imported ``from conftest``, so they live here)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def make_settings(store_url: str, tmp_path: Path, **extra: Any) -> Any:
    """Settings for a test hub: no auth, its own context cache and secrets folder."""
    from maeul.config import Settings

    base: dict[str, Any] = {
        "store_url": store_url,
        "auth_enabled": False,
        "context_cache_dir": tmp_path / "contexts",
        "context_fetch": True,
        "notify_backoff_s": 0.05,
        "secrets_dir": tmp_path / "secrets",
    }
    base.update(extra)
    return Settings(**base)


@contextmanager
def app_client(settings: Any) -> Iterator[Any]:
    """An in-process HTTP client of a whole maeul app (lifespan run, so its workers run);
    ``client.services`` is the app's Services."""
    import warnings

    from maeul.hub.server import build_app

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from starlette.testclient import TestClient

        app = build_app(settings)
        with TestClient(app) as client:
            client.services = app.state.services  # type: ignore[attr-defined]
            yield client
