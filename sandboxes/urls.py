"""Sandbox pages, under /o/<org_slug>/."""

from __future__ import annotations

from django.urls import path

from sandboxes import views

urlpatterns = [
    path("sandboxes/", views.sandbox_list, name="sandbox-list"),
    path("images/", views.image_list, name="image-list"),
    path("sandboxes/new/", views.sandbox_create, name="sandbox-create"),
    path("sandboxes/<str:sandbox_id>/", views.sandbox_detail, name="sandbox-detail"),
    path("sandboxes/<str:sandbox_id>/exec/", views.sandbox_exec, name="sandbox-exec"),
    path(
        "sandboxes/<str:sandbox_id>/commands/<int:command_id>/log/",
        views.sandbox_command_log,
        name="sandbox-command-log",
    ),
    path("sandboxes/<str:sandbox_id>/files/", views.sandbox_files, name="sandbox-files"),
    path("sandboxes/<str:sandbox_id>/files/upload/", views.sandbox_file_upload, name="sandbox-file-upload"),
    path("sandboxes/<str:sandbox_id>/kill/", views.sandbox_kill, name="sandbox-kill"),
]
