"""The Celery entry point for worker processes: `celery -A make_celery worker`.

Why a module of its own at the top (Flask's Celery pattern): a worker needs
the whole app built, and only this module and `app.py` may import `app`;
`jobs` itself never does. Importing this module builds the app, so nothing
but the `celery` command should import it.
"""

from __future__ import annotations

from app import create_app
from jobs.worker import worker_celery

flask_app = create_app()
celery_app = worker_celery(flask_app)
