"""Fair-share dispatch (li2_store.dispatch) against a real database, SQLite and PostgreSQL.

What is checked: batches leave the database in per-user round-robin order (weights respected,
order within a user kept, `high` first within its user only); the release budget is the idle
worker slots plus the look-ahead; a run is released once however many passes run; a release whose
send failed is re-sent by the reaper's lost-message pass; a dispatcher restart loses nothing.
"""

from __future__ import annotations

import itertools
from datetime import datetime

import pytest
import sqlalchemy as sa

from li2_store import dispatch
from li2_store.db import session_scope
from li2_store.models import Experiment
from li2_worker import reaper
from li2_worker.dispatcher import dispatch_config
from li2_worker.tasks import BatchJob

from .helpers import FakeRunner, add_user, new_engine, row, settings_for, tiny_spec, update
from .helpers import add_run as add_sent_run


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request, tmp_path):
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'li2.sqlite'}"
    else:
        url = request.getfixturevalue("postgres_url")
    eng = new_engine(url)
    yield eng
    eng.dispose()


def add_run(engine, user_id: int, spec: dict) -> str:
    """A queued run as fair-mode submits leave it: waiting in the database, not yet released."""
    return add_sent_run(engine, user_id, spec, released=False)


CONFIG = {"DISPATCH": "fair", "MAX_BATCH": 1, "BATCH_MEMORY_MB": 8192, "BROKER_URL": "unused://"}


def release(engine, n: int, **kw) -> list[dispatch.Released]:
    """Release n batches as if n worker slots were idle (one pass, recorded sends)."""
    sent: list = []
    done = dispatch.release_pass(
        engine, CONFIG, lookahead=0, within_s=60, worker=("w@test", n, "cpu"), send=lambda i, u: sent.append(i), **kw
    )
    assert [b.items for b in done] == sent
    return done


def finish_all(engine) -> None:
    """Every released run ran: the slots are idle again."""
    with session_scope(engine) as s:
        s.execute(sa.update(Experiment).where(Experiment.released_at.is_not(None)).values(status="succeeded"))


def test_two_users_take_turns_and_each_keeps_its_order(engine):
    a, b = add_user(engine, "a"), add_user(engine, "b")
    a_runs = [add_run(engine, a, tiny_spec(10, seed=i)) for i in range(6)]
    for i in range(2):
        add_run(engine, b, tiny_spec(10, seed=i))
    order = []
    for _ in range(8):
        (batch,) = release(engine, 1)
        order.append(batch.items[0][0])
        finish_all(engine)
    owners = ["a" if r in a_runs else "b" for r in order]
    assert owners[:4] == ["a", "b", "a", "b"] and owners[4:] == ["a"] * 4
    assert [r for r in order if r in a_runs] == a_runs  # submission order kept within a user
    assert release(engine, 1) == []  # nothing left


def test_three_users_alternate_and_a_late_user_neither_banks_nor_starves(engine):
    users = [add_user(engine, n) for n in "abc"]
    for u in users[:2]:
        for i in range(6):
            add_run(engine, u, tiny_spec(10, seed=i))
    seq = []
    for _ in range(4):  # a and b alone for a while: their passes grow
        seq.append(release(engine, 1)[0].user_id)
        finish_all(engine)
    for i in range(6):
        add_run(engine, users[2], tiny_spec(10, seed=i))
    for _ in range(6):
        seq.append(release(engine, 1)[0].user_id)
        finish_all(engine)
    late = seq[4:]
    assert sorted(late[:3]) == sorted(users) and sorted(late[3:]) == sorted(users)  # rounds of three
    assert all(x != y for x, y in itertools.pairwise(late))  # never the same user twice in a row


def test_weights_give_more_turns_per_round(engine):
    a, b = add_user(engine, "a"), add_user(engine, "b")
    for i in range(9):
        add_run(engine, a, tiny_spec(10, seed=i))
        add_run(engine, b, tiny_spec(10, seed=i))
    with session_scope(engine) as s:
        dispatch.set_share(s, b, weight=2)
    seq = []
    for _ in range(9):
        seq.append(release(engine, 1)[0].user_id)
        finish_all(engine)
    assert seq.count(b) == 6 and seq.count(a) == 3


def test_high_priority_overtakes_its_own_users_work_only(engine):
    a, b = add_user(engine, "a"), add_user(engine, "b")
    for i in range(3):
        add_run(engine, a, tiny_spec(10, seed=i))
    add_run(engine, b, tiny_spec(10, seed=0))
    urgent = add_run(engine, a, tiny_spec(10, seed=99))
    update(engine, urgent, priority=dispatch.PRIORITIES["high"])
    first = release(engine, 1)
    finish_all(engine)
    second = release(engine, 1)
    assert first[0].items[0][0] == urgent  # a's high run goes before a's earlier normal runs
    assert second[0].user_id == b  # but b still gets the next turn


def test_budget_is_idle_slots_plus_lookahead_and_nothing_is_released_twice(engine):
    a = add_user(engine, "a")
    for i in range(10):
        add_run(engine, a, tiny_spec(10, seed=i))
    assert len(release(engine, 3)) == 3  # three idle slots
    assert release(engine, 3) == []  # their messages are out, unclaimed: no more
    with session_scope(engine) as s:  # one of them is claimed and running: still no idle slot
        rid = s.scalar(sa.select(Experiment.id).where(Experiment.released_at.is_not(None)).limit(1))
        s.execute(sa.update(Experiment).where(Experiment.id == rid).values(status="running", claimed_by="w/1"))
    assert release(engine, 3) == []
    got = dispatch.release_pass(
        engine, CONFIG, lookahead=2, within_s=60, worker=("w@test", 3, "cpu"), send=lambda i, u: None
    )
    assert len(got) == 2  # the look-ahead
    with session_scope(engine) as s:
        ids = list(s.scalars(sa.select(Experiment.id).where(Experiment.released_at.is_not(None))))
    assert len(ids) == len(set(ids)) == 5


def test_fifo_mode_releases_nothing(engine):
    a = add_user(engine, "a")
    add_run(engine, a, tiny_spec(10))
    assert dispatch.release_pass(engine, {**CONFIG, "DISPATCH": "fifo"}, lookahead=0, within_s=60) == []


def test_a_release_whose_send_failed_is_resent_by_the_reaper(engine, redis_url):
    a = add_user(engine, "a")
    rid = add_run(engine, a, tiny_spec(10))

    def broken(items, url):
        raise ConnectionError("broker down")

    done = dispatch.release_pass(engine, CONFIG, lookahead=0, within_s=60, worker=("w@test", 1, "cpu"), send=broken)
    assert [b.items for b in done] == [[(rid, 1)]]  # marked released before the send failed
    update(engine, rid, enqueued_at=datetime(2000, 1, 1))  # long ago
    settings = settings_for(engine.url.render_as_string(hide_password=False), redis_url)
    # unclaimed for longer than LI2_REQUEUE_AFTER_S with an empty queue: the reaper re-sends it
    assert reaper.resend_lost_messages(engine, settings) == 1
    assert dispatch_config(settings)["DISPATCH"] == "fair"


def test_the_reaper_leaves_unreleased_runs_to_the_dispatcher(engine, redis_url):
    a = add_user(engine, "a")
    rid = add_run(engine, a, tiny_spec(10))
    update(engine, rid, enqueued_at=datetime(2000, 1, 1))
    url = engine.url.render_as_string(hide_password=False)
    assert reaper.resend_lost_messages(engine, settings_for(url, redis_url)) == 0
    assert reaper.resend_lost_messages(engine, settings_for(url, redis_url, LI2_DISPATCH="fifo")) == 1


@pytest.mark.parametrize("mode", ["fair", "fifo"])
def test_a_finished_batch_hands_its_slot_to_the_next_waiting_batch_at_once(engine, redis_url, mode):
    """li2_worker.tasks.BatchJob._hand_over: the task that ends releases the next batch itself
    (fair mode), so the message is in the broker before the dispatcher's next pass."""
    import redis

    a = add_user(engine, "a")
    first = add_sent_run(engine, a, tiny_spec(10, seed=1))  # its message is out: the job below runs it
    nxt = add_run(engine, a, tiny_spec(10, seed=2))  # waiting in the database
    url = engine.url.render_as_string(hide_password=False)
    settings = settings_for(url, redis_url, LI2_DISPATCH=mode)
    BatchJob(engine, settings, "w@test/1", run_batch=FakeRunner()).run([(first, 1)])  # no dispatcher thread runs
    assert row(engine, first)["status"] == "succeeded"
    queued = redis.Redis.from_url(redis_url).llen("celery")
    if mode == "fair":
        assert row(engine, nxt)["released_at"] is not None and queued == 1
    else:  # fifo: the API sent every batch at submit; nothing is released here
        assert row(engine, nxt)["released_at"] is None and queued == 0
