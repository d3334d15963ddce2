from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import URLPattern, URLResolver, include, path

from dashboard import views
from dashboard.api import api
from sandboxes.api import router as sandboxes_router
from volumes.api import router as volumes_router

org_patterns: list[URLPattern | URLResolver] = [
    path("", views.overview, name="overview"),
    path("members/", views.members, name="members"),
    path("members/add/", views.member_add, name="member-add"),
    path("members/<int:membership_id>/role/", views.member_role, name="member-role"),
    path("members/<int:membership_id>/remove/", views.member_remove, name="member-remove"),
    path("tokens/", views.tokens, name="tokens"),
    path("tokens/new/", views.token_create, name="token-create"),
    path("tokens/<int:token_id>/revoke/", views.token_revoke, name="token-revoke"),
    path("activity/", views.activity, name="activity"),
    path("", include("volumes.urls")),
    path("", include("sandboxes.urls")),
]

# The apps' routers are added here, once both the API and the routers are importable.
api.add_router("/", volumes_router)
api.add_router("/", sandboxes_router)

urlpatterns = [
    path("", views.home, name="home"),
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("healthz", views.healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("api/v2/", api.urls),
    path("o/<slug:org_slug>/", include(org_patterns)),
]
