"""A broker connection never crosses a fork (li2_store.producer._forget_inherited_connections).

The worker's main process sends batches (its dispatcher), and so does each pool child it forks
(the hand-over, li2_worker.tasks.BatchJob._hand_over). A child that sent through the parent's
cached app would share its sockets or SQLite connections. Checked here with a real fork and the
real embedded SQLite broker: the child builds its own app and its own connection pool, both
processes' messages arrive, and the parent's connections still work after the child has gone.
"""

from __future__ import annotations

import os
import sqlite3

from li2_store import producer


def _messages(broker_file) -> int:
    with sqlite3.connect(broker_file) as conn:
        return conn.execute("SELECT COUNT(*) FROM kombu_message").fetchone()[0]


def test_a_forked_child_sends_through_its_own_app_and_pool(tmp_path):
    broker_file = tmp_path / "broker.sqlite"
    url = f"sqla+sqlite:///{broker_file}"
    producer.send_batch([("parent-1", 1)], url)  # the parent's app and kombu's engine now exist
    parent_app = producer.producer_app(url)
    from kombu.transport.sqlalchemy import Channel

    [engine] = [eng for eng, _session in Channel._engines.values() if eng.url.database == str(broker_file)]
    parent_pool = engine.pool

    pid = os.fork()
    if pid == 0:  # the child: report through the exit status, never through pytest
        ok = False
        try:
            own_app = producer.producer_app(url) is not parent_app
            own_pool = engine.pool is not parent_pool
            producer.send_batch([("child-1", 1)], url)
            ok = own_app and own_pool
        finally:
            os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, "the child reused the parent's app or pool"

    assert producer.producer_app(url) is parent_app and engine.pool is parent_pool  # the parent's own, kept
    producer.send_batch([("parent-2", 1)], url)
    assert _messages(broker_file) == 3
