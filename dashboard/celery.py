"""The Celery app.

Queue ``default`` carries control-plane work; each node has its own queue ``node.<name>``
consumed only by the worker that runs on that node, because data-plane work must happen
on the machine that holds the storage.
"""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dashboard.settings")

app = Celery("berth")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
