"""`li2lab users list|revoke|rotate` against the real API app on SQLite and PostgreSQL.

The commands run as the admin would run them (li2lab.main, with LI2_DATABASE_URL in the
environment); the API is the real app on the same database, asked through its WSGI client, so
"refused at once" means: the request right after the command answers 401.
"""

from __future__ import annotations

import json

import pytest

from li2lab.main import main

SPEC = {"task": {"group": "cyclic", "order": 7}, "data": {"train_fraction": 0.5}, "training": {"epochs": 5}}


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path, monkeypatch):
    url = (
        f"sqlite:///{tmp_path / 'li2.sqlite'}" if request.param == "sqlite" else request.getfixturevalue("postgres_url")
    )
    monkeypatch.setenv("LI2_DATABASE_URL", url)
    return url


@pytest.fixture
def li2lab(capsys):
    """Run `li2lab ARGS` in-process; return (exit code, stdout, stderr)."""

    def run(*args):
        code = main(list(args))
        out = capsys.readouterr()
        return code, out.out, out.err

    return run


@pytest.fixture
def api(db_url, tmp_path):
    """The real API app on the same database; `get(token)` is one authenticated request's status."""
    from li2_service import create_app
    from li2_store.db import make_engine
    from li2_store.migrate import prepare_database

    engine = make_engine(db_url)
    prepare_database(engine)
    app = create_app(
        {
            "DATABASE_URL": db_url,
            "ENGINE": engine,
            "ENQUEUE": lambda items, broker_url: None,
            "TESTING": True,
            "BROKER_URL": f"sqla+sqlite:///{tmp_path / 'broker.sqlite'}",
        }
    )
    client = app.test_client()

    def get(token: str) -> int:
        return client.get("/api/v1/experiments", headers={"Authorization": f"Bearer {token}"}).status_code

    get.client = client  # type: ignore[attr-defined]
    yield get
    engine.dispose()


def test_revoke_refuses_the_token_on_the_very_next_request(li2lab, api):
    code, token, _ = li2lab("users", "create", "alice")
    token = token.strip()
    assert code == 0 and api(token) == 200
    code, out, _ = li2lab("users", "revoke", "alice")
    assert code == 0 and "revoked alice" in out and token not in out
    assert api(token) == 401  # no cached authentication: the next request is refused
    code, out, _ = li2lab("users", "list", "--json")
    (alice,) = json.loads(out)
    assert alice["name"] == "alice" and alice["revoked_at"] is not None


def test_rotate_prints_a_new_token_and_the_old_one_is_refused_at_once(li2lab, api):
    old = li2lab("users", "create", "bob")[1].strip()
    assert api(old) == 200
    code, out, _ = li2lab("users", "rotate", "bob")
    new = out.strip()
    assert code == 0 and len(new) >= 40 and new != old and "\n" not in new
    assert api(old) == 401 and api(new) == 200
    li2lab("users", "revoke", "bob")
    assert api(new) == 401
    again = li2lab("users", "rotate", "bob")[1].strip()  # rotating re-admits a revoked account
    assert api(again) == 200 and api(new) == 401


def test_list_shows_accounts_and_their_runs_never_tokens(li2lab, api):
    alice = li2lab("users", "create", "alice")[1].strip()
    root = li2lab("users", "create", "root", "--admin")[1].strip()
    answer = api.client.post("/api/v1/experiments", json=SPEC, headers={"Authorization": f"Bearer {alice}"})
    assert answer.status_code == 202
    code, out, _ = li2lab("users", "list")
    lines = out.splitlines()
    assert code == 0 and lines[0].split() == ["name", "admin", "created", "revoked", "experiments"]
    assert lines[1].split()[:2] == ["alice", "False"] and lines[1].split()[-1] == "1"
    assert lines[2].split()[:2] == ["root", "True"] and lines[2].split()[-1] == "0"
    assert lines[-1] == "2 user(s)" and alice not in out and root not in out
    records = json.loads(li2lab("users", "list", "--json")[1])
    assert [(r["name"], r["admin"], r["experiments"], r["revoked_at"]) for r in records] == [
        ("alice", False, 1, None),
        ("root", True, 0, None),
    ]


def test_unknown_user_and_bad_name_exit_1_and_2(li2lab, api):
    code, out, err = li2lab("users", "revoke", "nobody")
    assert code == 1 and "no user named 'nobody'" in err and out == ""
    code, out, err = li2lab("users", "rotate", "nobody")
    assert code == 1 and out == ""
    code, _, err = li2lab("users", "rotate", "bad name!")
    assert code == 2 and "NAME must be" in err


def test_every_users_command_has_an_example_in_its_help(capsys):
    for command in ("create", "list", "revoke", "rotate"):
        with pytest.raises(SystemExit):
            main(["users", command, "--help"])
        assert f"example: li2lab users {command}" in capsys.readouterr().out
