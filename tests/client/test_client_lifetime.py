"""The Client's lifetime and its public surface: it closes, it is a context manager, and the handles
fetch only through its public methods (so a script can do by id whatever a handle does)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import li2_client
from li2_client import Client, Li2Error

PACKAGE = Path(li2_client.__file__).parent


def pooled_connections(client: Client) -> int:
    """Connection pools the client's HTTP session holds open (one per host it has talked to)."""
    return sum(len(adapter.poolmanager.pools) for adapter in client._http.session.adapters.values())


def test_with_block_closes_the_session(live_service, alice, finished_exp):
    with Client(live_service.url, token=alice) as client:
        assert client.get(finished_exp.id).status == "succeeded"
        assert pooled_connections(client) == 1 and not client.closed
    assert client.closed and pooled_connections(client) == 0
    with pytest.raises(Li2Error, match="closed"):
        client.get(finished_exp.id)
    assert "closed" in repr(client)


def test_close_is_explicit_and_idempotent(live_service, alice):
    client = Client(live_service.url, token=alice)
    assert client.health()["status"] == "ok"
    client.close()
    client.close()
    with pytest.raises(Li2Error, match="closed"):
        client.health()


def test_the_block_closes_on_error_too(live_service, alice):
    with pytest.raises(ZeroDivisionError), Client(live_service.url, token=alice) as client:
        client.health()
        raise ZeroDivisionError
    assert client.closed and pooled_connections(client) == 0


def test_by_id_accessors_answer_what_the_handle_does(client, finished_exp):
    exp_id = finished_exp.id
    assert client.experiment_data(exp_id)["status"] == "succeeded"
    assert client.metric_columns(exp_id) == finished_exp.metric_columns()
    assert client.timeline(exp_id) == finished_exp.timeline()
    assert client.features(exp_id) == finished_exp.features()
    assert client.predictions(exp_id) == finished_exp.predictions()
    assert client.checkpoints(exp_id) == finished_exp.checkpoints()
    assert client.metrics_csv_text(exp_id).splitlines()[0].startswith("epoch")


def test_sweep_accessors_answer_what_the_handle_does(client, finished_sweep):
    sweep_id = finished_sweep.id
    assert client.sweep_data(sweep_id)["status"] == finished_sweep.status
    assert [r["id"] for r in client.sweep_runs(sweep_id)] == [r["id"] for r in finished_sweep.run_items()]
    assert client.scaling_law(sweep_id).c == finished_sweep.scaling_law().c


def private_client_uses(path: Path) -> list[str]:
    """`x._http` / `x._paginate` attribute reads in a module: the Client's private parts."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [
        f"{path.name}:{node.lineno} .{node.attr}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute) and node.attr in ("_http", "_paginate")
    ]


def test_only_the_client_touches_its_transport():
    modules = sorted(p for p in PACKAGE.glob("*.py") if p.name != "client.py")
    assert len(modules) >= 10
    found = [use for path in modules for use in private_client_uses(path)]
    assert found == [], f"handles must use public Client methods, not: {found}"
    assert private_client_uses(PACKAGE / "client.py"), "the scanner finds the Client's own uses"
