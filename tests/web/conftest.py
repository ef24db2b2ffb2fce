"""Fixtures of the web tests: an in-process app with a seeded city and signed-in clients."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from webcity import PASSWORD, accounts, seed

from support import make_settings


@pytest.fixture
def app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A whole maeul app on SQLite with keys required; ``app.keys`` holds keys by role."""
    from maeul.hub.server import build_app

    # a cheaper scrypt for the accounts these tests create (test_users checks the real one)
    monkeypatch.setattr("maeul.web.users.SCRYPT", {"n": 2**8, "r": 8, "p": 1, "dklen": 32})

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from starlette.testclient import TestClient

        a = build_app(make_settings(f"sqlite:///{tmp_path}/web.db", tmp_path,
                                    auth_enabled=True, trust_jobs=False))
        with TestClient(a):  # runs the lifespan once for the whole test
            s = a.state.services
            seed(s)
            a.state.keys = accounts(s)
            yield a


@pytest.fixture
def client(app: Any) -> Callable[..., Any]:
    """``client(user=None, key=None)``: a fresh client, signed in when asked."""
    from starlette.testclient import TestClient

    made: list[Any] = []

    def make(user: str | None = None, key: str | None = None, **headers: str) -> Any:
        c = TestClient(app, base_url="http://testserver", headers=headers)
        c.services = app.state.services
        made.append(c)
        if user is not None or key is not None:
            data = ({"method": "password", "username": user, "password": PASSWORD}
                    if user else {"method": "key", "key": key})
            r = c.post("/signin", data=data, follow_redirects=False)
            assert r.status_code == 303, r.text
        return c

    yield make
    for c in made:
        c.close()
