"""Volume pages, under /o/<org_slug>/."""

from __future__ import annotations

from django.urls import path

from volumes import views

urlpatterns = [
    path("volumes/", views.volume_list, name="volume-list"),
    path("volumes/new/", views.volume_create, name="volume-create"),
    path("volumes/new/validate/", views.volume_validate, name="volume-validate"),
    path("volumes/<str:id_or_slug>/", views.volume_detail, name="volume-detail"),
    path("volumes/<str:id_or_slug>/files/", views.volume_files, name="volume-files"),
    path("volumes/<str:id_or_slug>/edit/", views.volume_edit, name="volume-edit"),
    path("volumes/<str:id_or_slug>/extend/", views.volume_extend, name="volume-extend"),
    path("volumes/<str:id_or_slug>/delete/", views.volume_delete, name="volume-delete"),
    path("volumes/<str:id_or_slug>/retry/", views.volume_retry, name="volume-retry"),
    path("trash/", views.volume_trash, name="volume-trash"),
    path("trash/<uuid:volume_id>/restore/", views.volume_restore, name="volume-restore"),
]
