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


CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


@contextmanager
def chromium() -> Iterator[Any]:
    """Debian's Chromium driven by Playwright; skips without it (fails under
    ``MAEUL_REQUIRE_SERVICES=1``, as CI sets)."""
    import os

    import pytest

    if not CHROMIUM.exists():
        msg = f"{CHROMIUM} is missing: apt-get install -y chromium"
        if os.environ.get("MAEUL_REQUIRE_SERVICES") == "1":
            pytest.fail(f"MAEUL_REQUIRE_SERVICES=1 but {msg}")
        pytest.skip(msg)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


@contextmanager
def threaded_server(app: Any) -> Iterator[str]:
    """``app`` served by uvicorn in a thread on a free port; yields its base URL."""
    import threading
    import time

    import uvicorn

    from serverproc import free_port

    port = free_port()
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                        log_level="warning", access_log=False))
    th = threading.Thread(target=srv.run, daemon=True)
    th.start()
    deadline = time.monotonic() + 20
    while not srv.started:
        assert time.monotonic() < deadline and th.is_alive(), "the server did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        srv.should_exit = True
        th.join(15)
