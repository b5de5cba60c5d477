"""li2_service: the HTTP face of Li2 Lab.

A Flask app (`create_app`) with flask-smorest blueprints under /api/v1, bearer-token accounts, the
SQLAlchemy store (models.py, db.py) and its Alembic migrations. It validates specs with `li2.spec`,
writes run rows (the database is the truth) and enqueues only `(run_id, attempt)` for the Celery
workers. It never imports torch: training lives in the worker process.
"""
__all__ = ["create_app"]


def __getattr__(name):
    # Lazy, so `li2_service.config` (used by the worker) does not pull in Flask.
    if name == "create_app":
        from li2_service.app import create_app

        return create_app
    raise AttributeError(name)
