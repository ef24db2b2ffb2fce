"""Operator accounts: scrypt hashes, bad input, the ``maeul users`` commands."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from maeul.hub.store.base import open_store
from maeul.web.users import KIND, UserError, Users


@pytest.fixture
def users(tmp_path: Path) -> Any:
    store = open_store(f"sqlite:///{tmp_path}/u.db")
    yield Users(store)
    store.close()


def test_add_verify_and_remove(users: Users) -> None:
    doc = users.add("mina", "a long passphrase", "operator", "default", ["care", "care"])
    assert doc == {"username": "mina", "role": "operator", "tenant": "default",
                   "purposes": ["care"], "createdAt": doc["createdAt"]}
    caller = users.verify("mina", "a long passphrase")
    assert caller is not None
    assert (caller.actor, caller.role, caller.tenant) == ("user:mina", "operator", "default")
    assert caller.purposes == frozenset({"care"})
    assert users.verify("mina", "a long passphrasE") is None
    assert users.verify("nobody", "a long passphrase") is None
    assert [u["username"] for u in users.list()] == ["mina"]
    assert "hash" not in users.list()[0]
    assert users.remove("mina") and not users.remove("mina")
    assert users.verify("mina", "a long passphrase") is None


def test_only_a_salted_scrypt_hash_is_stored(users: Users) -> None:
    users.add("a1", "the same password", "reader")
    users.add("a2", "the same password", "reader")
    docs = {k: d for _t, k, d in users.store.reader().list_json(KIND, "")}
    assert docs["a1"]["hash"] != docs["a2"]["hash"] and docs["a1"]["salt"] != docs["a2"]["salt"]
    assert "the same password" not in json.dumps(docs)
    assert docs["a1"]["scrypt"]["n"] >= 2**14
    actions = [r["action"] for r in users.store.audit_log(None, 10)]
    assert actions.count("user.create") == 2


@pytest.mark.parametrize("name,password,role,purposes,field", [
    ("Mina", "a long passphrase", "operator", [], "username"),
    ("", "a long passphrase", "operator", [], "username"),
    ("x" * 65, "a long passphrase", "operator", [], "username"),
    ("mina", "short", "operator", [], "password"),
    ("mina", "a long passphrase", "boss", [], "role"),
    ("mina", "a long passphrase", "reader", ["Care Work"], "purpose"),
])
def test_bad_accounts_are_refused_naming_the_field(
        users: Users, name: str, password: str, role: str, purposes: list[str],
        field: str) -> None:
    with pytest.raises(UserError, match=f"^{field}"):
        users.add(name, password, role, None, purposes)
    assert users.list() == []


def test_a_taken_name_is_refused(users: Users) -> None:
    users.add("mina", "a long passphrase", "reader")
    with pytest.raises(UserError, match="already exists"):
        users.add("mina", "another passphrase", "admin")
    assert users.list()[0]["role"] == "reader"


def test_cli_users_add_list_remove(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    from maeul.cli import main

    url = f"sqlite:///{tmp_path}/cli.db"
    monkeypatch.setattr("sys.stdin", io.StringIO("a long passphrase\n"))
    assert main(["users", "add", "mina", "--role", "operator", "--tenant", "default",
                 "--purpose", "care", "--password-stdin", "--store-url", url]) == 0
    assert json.loads(capsys.readouterr().out)["username"] == "mina"
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    assert main(["users", "add", "bo", "--role", "reader", "--password-stdin",
                 "--store-url", url]) == 2
    assert "password: at least 10" in capsys.readouterr().err
    assert main(["users", "list", "--store-url", url]) == 0
    listed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [u["username"] for u in listed] == ["mina"] and listed[0]["purposes"] == ["care"]
    assert main(["users", "remove", "mina", "--store-url", url]) == 0
    assert main(["users", "remove", "mina", "--store-url", url]) == 1
    assert "no user mina" in capsys.readouterr().err
