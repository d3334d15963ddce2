from __future__ import annotations

from django.apps import AppConfig


class VolumesConfig(AppConfig):
    name = "volumes"
