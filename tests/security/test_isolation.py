"""User A cannot read, list, cancel or download user B's experiments, sweeps or checkpoints.

Alice owns one finished experiment (with a result and checkpoints) and one sweep. Bob, a plain
user, must get exactly what an unknown id gets (404, so ids cannot be probed), must not see them in
any list, and his cancels must change nothing in the database. Alice herself gets 200s (so the
404s are about ownership, not broken routes), and the admin sees everything.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa

UNKNOWN = "0" * 32


def reads(world) -> list[str]:
    e, s, k = world.experiment_id, world.sweep_id, world.checkpoint_epoch
    return [
        f"/api/v1/experiments/{e}",
        f"/api/v1/experiments/{e}/metrics",
        f"/api/v1/experiments/{e}/metrics?format=csv",
        f"/api/v1/experiments/{e}/timeline",
        f"/api/v1/experiments/{e}/features",
        f"/api/v1/experiments/{e}/predictions",
        f"/api/v1/experiments/{e}/checkpoints",
        f"/api/v1/experiments/{e}/checkpoints/{k}",
        f"/api/v1/experiments/{e}/checkpoints/20",
        f"/api/v1/experiments/{e}/archive",
        f"/api/v1/sweeps/{s}",
        f"/api/v1/sweeps/{s}/runs",
        f"/api/v1/sweeps/{s}/scaling-law?partial=true",
    ]


def auth(token):
    return {"Authorization": f"Bearer {token}"}


def test_owner_and_admin_can_read(client, world):
    for token in (world.alice, world.root):
        for url in reads(world):
            r = client.get(url, headers=auth(token))
            # scaling-law: 409 is the right answer while no sweep run has ended
            assert r.status_code in (200, 409), f"{url}: {r.status_code} {r.get_data()[:200]!r}"


def test_other_user_gets_404_exactly_like_an_unknown_id(client, world):
    for url in reads(world):
        r = client.get(url, headers=auth(world.bob))
        assert r.status_code == 404, f"bob read {url}: {r.status_code}"
        probe = client.get(
            url.replace(world.experiment_id, UNKNOWN).replace(world.sweep_id, UNKNOWN), headers=auth(world.bob)
        )
        assert probe.status_code == 404
        # same message shape: nothing tells bob the id exists
        assert r.get_json()["message"] == probe.get_json()["message"], url
        assert world.alice not in r.get_data(as_text=True)


def test_checkpoint_bytes_never_reach_another_user(client, world):
    own = client.get(
        f"/api/v1/experiments/{world.experiment_id}/checkpoints/{world.checkpoint_epoch}", headers=auth(world.alice)
    )
    assert own.status_code == 200 and own.get_data() == world.checkpoint_bytes
    other = client.get(
        f"/api/v1/experiments/{world.experiment_id}/checkpoints/{world.checkpoint_epoch}", headers=auth(world.bob)
    )
    assert other.status_code == 404 and world.checkpoint_bytes not in other.get_data()


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/experiments",
        "/api/v1/sweeps",
        "/api/v1/experiments?status=succeeded",
        "/api/v1/experiments?sweep_id={sweep}",
    ],
)
def test_lists_show_only_own_rows(client, world, path):
    path = path.format(sweep=world.sweep_id)
    mine = client.get(path, headers=auth(world.alice)).get_json()
    theirs = client.get(path, headers=auth(world.bob)).get_json()
    assert mine["total"] >= 1 and mine["items"]
    assert theirs["total"] == 0 and theirs["items"] == []
    everyone = client.get(path, headers=auth(world.root)).get_json()
    assert everyone["total"] == mine["total"]


def test_other_user_cannot_cancel(client, world, engine):
    from li2_store import models

    with engine.connect() as c:
        queued_sweep_run = c.scalar(sa.select(models.Experiment.id).where(models.Experiment.sweep_id == world.sweep_id))

    def snapshot():
        with engine.connect() as c:
            return [
                tuple(r)
                for r in c.execute(
                    sa.select(
                        models.Experiment.id, models.Experiment.status, models.Experiment.cancel_requested
                    ).order_by(models.Experiment.id)
                )
            ]

    before = snapshot()
    for url in (
        f"/api/v1/experiments/{queued_sweep_run}/cancel",
        f"/api/v1/experiments/{world.experiment_id}/cancel",
        f"/api/v1/sweeps/{world.sweep_id}/cancel",
    ):
        r = client.post(url, headers=auth(world.bob))
        assert r.status_code == 404, f"bob cancelled {url}: {r.status_code}"
    assert snapshot() == before
    # the owner can: the same request from alice cancels the queued run
    r = client.post(f"/api/v1/experiments/{queued_sweep_run}/cancel", headers=auth(world.alice))
    assert r.status_code == 202 and r.get_json()["status"] == "cancelled"
    assert snapshot() != before


def test_identical_spec_is_not_shared_across_users(client, world, valid_spec, engine):
    """Dedup is per user: carol submitting alice's exact spec gets a new run of her own, not hers."""
    from li2_service.auth import create_user
    from li2_store.db import session_scope

    with session_scope(engine) as s:
        carol = create_user(s, "carol")
    r = client.post("/api/v1/experiments", json=valid_spec, headers=auth(carol))
    assert r.status_code == 202, r.get_json()
    body = r.get_json()
    assert body["id"] != world.experiment_id and body["cached"] is False
    assert "summary" not in body or body["summary"] in (None, {})
