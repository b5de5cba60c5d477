"""li2_service: the HTTP face of Li2 Lab.

A Flask app (`create_app`) with flask-smorest blueprints under /api/v1 and bearer-token accounts.
It validates specs with `li2.spec`, writes run rows through `li2_store` (the database is the
truth) and sends only `(run_id, attempt)` messages, by task name, through `li2_store.producer`.
It never imports torch or the worker's code: training lives in the worker process.
"""

from li2_service.app import create_app

__all__ = ["create_app"]
