from __future__ import annotations

import uuid
from datetime import timedelta

from django.conf import settings
from django.db import models
from django.utils import timezone

from dashboard.models import Organization
from volumes.models import Node, Region


class SandboxState(models.TextChoices):
    PENDING = "pending", "Pending"
    STARTING = "starting", "Starting"
    RUNNING = "running", "Running"
    STOPPING = "stopping", "Stopping"
    STOPPED = "stopped", "Stopped"
    FAILED = "failed", "Failed"
    EXPIRED = "expired", "Expired"


ACTIVE_STATES = (SandboxState.PENDING, SandboxState.STARTING, SandboxState.RUNNING, SandboxState.STOPPING)
DEFAULT_LIFETIME = timedelta(minutes=30)
MAX_LIFETIME = timedelta(hours=24)


class Image(models.Model):
    """A root filesystem sandboxes start from: ``host`` (the node's own /usr) or an imported tarball."""

    name = models.SlugField(max_length=60, unique=True)
    description = models.CharField(max_length=200, blank=True)
    source = models.CharField(max_length=500, blank=True, help_text="The tarball it was imported from")
    size = models.BigIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class SandboxQuerySet(models.QuerySet["Sandbox"]):
    def for_org(self, org: Organization) -> SandboxQuerySet:
        return self.filter(organization=org)

    def active(self) -> SandboxQuerySet:
        return self.filter(state__in=ACTIVE_STATES)


class Sandbox(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="sandboxes")
    region = models.ForeignKey(Region, on_delete=models.PROTECT, related_name="sandboxes")
    node = models.ForeignKey(Node, on_delete=models.PROTECT, related_name="sandboxes")
    image = models.CharField(max_length=60, default="host")
    state = models.CharField(max_length=10, choices=SandboxState.choices, default=SandboxState.PENDING)
    state_changed_at = models.DateTimeField(default=timezone.now)
    error = models.TextField(blank=True)
    stop_as = models.CharField(
        max_length=10,
        choices=SandboxState.choices,
        default=SandboxState.STOPPED,
        help_text="The state it ends in once stopped: stopped (killed), expired (reaped) or failed",
    )
    env = models.JSONField(default=dict, blank=True)
    labels = models.JSONField(default=dict, blank=True)
    allow_net = models.BooleanField(default=False)
    memory_limit = models.BigIntegerField(null=True, blank=True, help_text="Bytes")
    lifetime = models.DurationField(default=DEFAULT_LIFETIME)
    expires_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    stopped_at = models.DateTimeField(null=True, blank=True)

    objects = SandboxQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "id"]
        indexes = [
            # The reaper: running sandboxes whose expires_at has passed.
            models.Index(
                fields=["expires_at"],
                condition=models.Q(state=SandboxState.RUNNING),
                name="sandbox_expiry_due",
            ),
            models.Index(fields=["organization", "state", "-created_at"], name="sandbox_org_list"),
            # Reconciliation: sandboxes in flight (pending, starting, stopping) for too long.
            models.Index(
                fields=["state", "state_changed_at"],
                condition=models.Q(state__in=["pending", "starting", "stopping"]),
                name="sandbox_in_flight",
            ),
        ]

    def __str__(self) -> str:
        return f"sb-{str(self.id)[:8]}"

    @property
    def name(self) -> str:
        return str(self)

    @property
    def is_active(self) -> bool:
        return self.state in ACTIVE_STATES


class Command(models.Model):
    """One exec in a sandbox, kept as history."""

    sandbox = models.ForeignKey(Sandbox, on_delete=models.CASCADE, related_name="commands")
    cmd = models.JSONField(help_text="A shell string or an argv list")
    cwd = models.CharField(max_length=500, blank=True)
    background = models.BooleanField(default=False)
    pid = models.IntegerField(null=True, blank=True)
    exit_code = models.IntegerField(null=True, blank=True)
    stdout = models.TextField(blank=True)
    stderr = models.TextField(blank=True)
    truncated = models.BooleanField(default=False)
    timed_out = models.BooleanField(default=False)
    duration = models.FloatField(null=True, blank=True, help_text="Seconds")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.cmd if isinstance(self.cmd, str) else " ".join(self.cmd)
