"""Shared fixtures: store backends (SQLite always, PostgreSQL when reachable), app clients.

With MAEUL_REQUIRE_SERVICES=1 (set by .ci/run) a missing PostgreSQL or MQTT broker fails the
tests that need it; otherwise they skip with a message saying how to run them.
"""

from __future__ import annotations

import os
import socket
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from support import make_settings

REQUIRE = os.environ.get("MAEUL_REQUIRE_SERVICES") == "1"
PG_ADMIN_URL = os.environ.get("MAEUL_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
MQTT_HOST = os.environ.get("MAEUL_TEST_MQTT_HOST", "127.0.0.1")
MQTT_PORT = int(os.environ.get("MAEUL_TEST_MQTT_PORT", "1883"))
DATA_DIR = Path(
    os.environ.get("MAEUL_DATA_DIR", Path(__file__).resolve().parents[1].parent / "shared" / "data")
)


def _missing(service: str, how: str) -> None:
    msg = f"{service} is not reachable; {how}"
    if REQUIRE:
        pytest.fail(f"MAEUL_REQUIRE_SERVICES=1 but {msg}")
    pytest.skip(msg)


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    """Admin URL of a reachable PostgreSQL server.

    Test databases are copies of a template made once per session, with PostGIS in it when
    the server has the extension (creating it costs about half a second a database)."""
    try:
        import psycopg

        with psycopg.connect(PG_ADMIN_URL, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except Exception as exc:  # noqa: BLE001
        _missing("PostgreSQL", f"start one on 127.0.0.1:5432 or set MAEUL_TEST_PG_URL ({exc})")
    name, url = fresh_pg_database(PG_ADMIN_URL)
    with psycopg.connect(url, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'postgis'").fetchone():
            conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    _TEMPLATE.append(name)
    yield PG_ADMIN_URL
    _TEMPLATE.clear()
    drop_pg_database(PG_ADMIN_URL, name)


_TEMPLATE: list[str] = []  # the session's template database, once made


def fresh_pg_database(admin_url: str) -> tuple[str, str]:
    import psycopg

    name = f"maeul_test_{uuid.uuid4().hex[:12]}"
    template = f' TEMPLATE "{_TEMPLATE[0]}"' if _TEMPLATE else ""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"{template}')
    base = admin_url.rsplit("/", 1)[0]
    return name, f"{base}/{name}"


def drop_pg_database(admin_url: str, name: str) -> None:
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def pg_url(pg_server: str) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test."""
    name, url = fresh_pg_database(pg_server)
    yield url
    drop_pg_database(pg_server, name)


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Every conformance test runs once per backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/hub.db"
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture(scope="session")
def mqtt_broker() -> tuple[str, int]:
    if not _port_open(MQTT_HOST, MQTT_PORT):
        _missing("the MQTT broker", "start Mosquitto on 127.0.0.1:1883 (mosquitto -d)")
    return MQTT_HOST, MQTT_PORT


@pytest.fixture
def settings(store_url: str, tmp_path: Path) -> Any:
    return make_settings(store_url, tmp_path)


@pytest.fixture
def client(settings: Any) -> Iterator[Any]:
    """An in-process HTTP client of a hub (lifespan run, so the notifier is running)."""
    from maeul.hub.server import build_app

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from starlette.testclient import TestClient

        app = build_app(settings)
        with TestClient(app) as c:
            c.services = app.state.services  # type: ignore[attr-defined]
            yield c


@pytest.fixture(scope="session")
def data_dir() -> Path:
    if not DATA_DIR.is_dir():
        pytest.skip(f"real data folder {DATA_DIR} is absent (set MAEUL_DATA_DIR)")
    return DATA_DIR


@pytest.fixture(autouse=True)
def _declared_entries_restored() -> Iterator[None]:
    """Services declare their registry entries process-wide when first used; each test starts
    from the declarations the imports made, as other tests count declared entries."""
    from maeul.trust.registry_model import DECLARED

    before = dict(DECLARED)
    yield
    DECLARED.clear()
    DECLARED.update(before)
