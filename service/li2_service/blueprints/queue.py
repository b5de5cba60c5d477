"""/api/v1/queue: what runs where, and who waits for what, with estimated starts.

Visibility (the choice, documented in docs/workers.md): everyone sees every running batch's
worker, device, start time, user name, run count and progress, and every waiting user's counts,
position and estimated start — that is what sharing a server fairly needs to be visible. Run ids
are shown only for the caller's own work (admins: everyone's); specs never appear here (an
experiment's spec is at GET /experiments/{id}, which answers 404 for another user's run).
"""

from __future__ import annotations

from datetime import timedelta

from flask import current_app
from flask_smorest import Blueprint
from marshmallow import Schema, fields

from li2_service import auth, runs
from li2_store.db import session_scope
from li2_store.dispatch import worker_seen_s
from li2_store.queue_state import snapshot

blp = Blueprint(
    "queue",
    __name__,
    url_prefix="/api/v1/queue",
    description="The shared queue: running batches per worker and waiting work per user (fair-share order).",
)


class RunningSchema(Schema):
    worker = fields.String(metadata={"description": "pool process holding the batch"})
    device = fields.String(allow_none=True)
    since = fields.String(metadata={"description": "when the batch started (ISO 8601, UTC)"})
    user = fields.String()
    runs = fields.Integer()
    run_ids = fields.List(fields.String(), allow_none=True, metadata={"description": "yours only (admins: all)"})
    epoch = fields.Integer()
    epochs = fields.Integer()


class WaitingSchema(Schema):
    user = fields.String()
    runs = fields.Integer()
    batches = fields.Integer()
    priorities = fields.Dict(keys=fields.String(), values=fields.Integer())
    position = fields.Integer(metadata={"description": "1: this user's next batch goes out next"})
    estimated_start_s = fields.Float(allow_none=True, metadata={"description": "seconds from now; null: unmeasured"})
    estimated_start = fields.String(allow_none=True)
    next_run_ids = fields.List(fields.String(), allow_none=True, metadata={"description": "yours only"})


class QueueSchema(Schema):
    now = fields.String()
    dispatch = fields.String(metadata={"description": "fair | fifo (LI2_DISPATCH)"})
    slots = fields.Integer(metadata={"description": "pool slots of the live workers"})
    workers = fields.List(fields.Dict())
    running = fields.List(fields.Nested(RunningSchema))
    released = fields.Integer(metadata={"description": "batches sent to the broker, not yet claimed"})
    waiting = fields.List(fields.Nested(WaitingSchema))


def _iso(t) -> str | None:
    return None if t is None else t.isoformat() + ("Z" if t.tzinfo is None else "")


@blp.route("", methods=["GET"])
@blp.response(200, QueueSchema)
def queue():
    """The queue now: running batches, released batches, and each waiting user's turn."""
    state: runs.ServiceState = current_app.extensions["li2"]
    me = auth.current_user()
    cfg = state.config
    with session_scope(state.engine) as s:
        snap = snapshot(
            s,
            within_s=worker_seen_s(cfg),
            max_batch=cfg["MAX_BATCH"],
            memory_bytes=cfg["BATCH_MEMORY_MB"] << 20,
        )

    def mine(user_id: int) -> bool:
        return me.is_admin or user_id == me.id

    return {
        "now": _iso(snap.now),
        "dispatch": cfg.get("DISPATCH", "fair"),
        "slots": snap.slots,
        "workers": [{**w, "seen_at": _iso(w["seen_at"])} for w in snap.workers],
        "running": [
            {
                "worker": b.worker,
                "device": b.device,
                "since": _iso(b.since),
                "user": snap.user_names.get(b.user_id, "?"),
                "runs": len(b.run_ids),
                "run_ids": b.run_ids if mine(b.user_id) else None,
                "epoch": b.epoch,
                "epochs": b.epochs,
            }
            for b in snap.running
        ],
        "released": snap.released,
        "waiting": [
            {
                "user": snap.user_names.get(u.user_id, "?"),
                "runs": u.runs,
                "batches": u.batches,
                "priorities": u.priorities,
                "position": u.position,
                "estimated_start_s": u.estimated_start_s,
                "estimated_start": None
                if u.estimated_start_s is None
                else _iso(snap.now + timedelta(seconds=u.estimated_start_s)),
                "next_run_ids": u.next_run_ids if mine(u.user_id) else None,
            }
            for u in snap.waiting
        ],
    }
