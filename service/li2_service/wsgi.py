"""WSGI entry point for production: `gunicorn li2_service.wsgi:app` (settings from LI2_*).

The schema is created by the one-shot `python -m li2_store.migrate` before the API starts.
"""

from li2_service.app import create_app

app = create_app()
