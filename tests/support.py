"""Helpers shared by test modules (imported as ``support``; a nested conftest.py would shadow
helpers imported ``from conftest``, so they live here)."""

from __future__ import annotations

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
