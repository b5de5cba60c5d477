"""li2_store: the persistence layer the API and the workers share.

The database is the record of truth for every run; Celery only delivers `(run_id, attempt)`. Both
the HTTP API (`li2_service`) and the Celery worker (`li2_worker`) use this package, and it uses
neither. Its modules:

    config      the shared LI2_* settings (database and broker URLs, batch limits)
    db          engine, sessions and the database's clock (`db_now`)
    models      the tables: users, sweeps, experiments, results, checkpoints
    migrate     Alembic, with the migrations in migrations/
    lease       run state transitions: claim, heartbeat, progress, finish (guarded by the lease)
    results     results and checkpoints in the database
    sweeps      sweep fan-in and its scaling-law fit
    producer    sending `li2.run_batch` messages by task name (needs only the broker URL)
"""
