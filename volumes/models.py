from __future__ import annotations

import uuid

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models
from django.utils import timezone

from dashboard.models import Organization

MB = 1000**2
GB = 1000**3


class Region(models.Model):
    code = models.CharField(
        max_length=8, unique=True, validators=[RegexValidator(r"^[a-z]{2,8}$", "2 to 8 lowercase letters")]
    )
    name = models.CharField(max_length=60)
    min_capacity = models.BigIntegerField(default=300 * MB, help_text="Smallest volume, in bytes")
    max_capacity = models.BigIntegerField(default=100 * GB, help_text="Largest volume, in bytes")

    class Meta:
        ordering = ["code"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(min_capacity__gt=0) & models.Q(max_capacity__gte=models.F("min_capacity")),
                name="region_limits_in_order",
            )
        ]

    def __str__(self) -> str:
        return f"{self.code} ({self.name})"


class Node(models.Model):
    """A machine of a region that holds volumes and runs sandboxes, served by its own queue."""

    name = models.SlugField(max_length=40, unique=True)
    region = models.ForeignKey(Region, on_delete=models.PROTECT, related_name="nodes")
    driver = models.CharField(max_length=20, default="local")
    data_root = models.CharField(max_length=500, help_text="Where the node keeps volumes and sandboxes")
    capacity = models.BigIntegerField(help_text="Bytes of volume capacity this node may hand out")
    is_active = models.BooleanField(
        default=True, help_text="New volumes and sandboxes are placed only on active nodes"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["region__code", "name"]

    def __str__(self) -> str:
        return self.name

    @property
    def queue(self) -> str:
        return f"node.{self.name}"


class VolumeState(models.TextChoices):
    CREATING = "creating", "Creating"
    AVAILABLE = "available", "Available"
    ERROR = "error", "Error"
    DELETED = "deleted", "Deleted"
    PURGING = "purging", "Purging"
    PURGED = "purged", "Purged"


LIVE_STATES = (VolumeState.CREATING, VolumeState.AVAILABLE, VolumeState.ERROR)
GONE_STATES = (VolumeState.DELETED, VolumeState.PURGING, VolumeState.PURGED)


class VolumeQuerySet(models.QuerySet["Volume"]):
    def for_org(self, org: Organization) -> VolumeQuerySet:
        return self.filter(organization=org)

    def live(self) -> VolumeQuerySet:
        return self.filter(state__in=LIVE_STATES)

    def in_trash(self) -> VolumeQuerySet:
        return self.filter(state=VolumeState.DELETED)

    def lookup(self, id_or_slug: str) -> VolumeQuerySet:
        """The volume named by its UUID or its slug (a slug names only a live volume)."""
        try:
            return self.filter(id=uuid.UUID(str(id_or_slug)))
        except ValueError:
            return self.live().filter(slug=id_or_slug)


class Volume(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="volumes")
    slug = models.CharField(max_length=30)
    region = models.ForeignKey(Region, on_delete=models.PROTECT, related_name="volumes")
    node = models.ForeignKey(Node, on_delete=models.PROTECT, related_name="volumes")
    capacity = models.BigIntegerField(help_text="Bytes")
    resizing_to = models.BigIntegerField(null=True, blank=True, help_text="Bytes, while a grow is in flight")
    used = models.BigIntegerField(null=True, blank=True, help_text="Bytes, as the node last measured")
    used_at = models.DateTimeField(null=True, blank=True)
    state = models.CharField(max_length=10, choices=VolumeState.choices, default=VolumeState.CREATING)
    state_changed_at = models.DateTimeField(default=timezone.now)
    error = models.TextField(blank=True)
    labels = models.JSONField(default=dict, blank=True)
    description = models.TextField(blank=True, max_length=1000)
    generation = models.PositiveIntegerField(
        default=0, help_text="Bumped by every delete and restore; a purge carries the one it was claimed at"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    deleted_at = models.DateTimeField(null=True, blank=True)
    purge_after = models.DateTimeField(null=True, blank=True)
    purged_at = models.DateTimeField(null=True, blank=True)

    objects = VolumeQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "id"]
        permissions = [("restore_volume", "Can restore a deleted volume")]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "slug"],
                condition=models.Q(state__in=LIVE_STATES),
                name="volume_slug_unique_among_live",
                violation_error_message="A live volume with this slug already exists",
            ),
            models.CheckConstraint(condition=models.Q(capacity__gt=0), name="volume_capacity_positive"),
        ]
        indexes = [
            # The purge sweep: state = 'deleted' AND purge_after <= now(), oldest first.
            models.Index(
                fields=["purge_after"], condition=models.Q(state=VolumeState.DELETED), name="volume_purge_due"
            ),
            # Reconciliation: rows in flight (creating, purging) for too long.
            models.Index(
                fields=["state", "state_changed_at"],
                condition=models.Q(state__in=[VolumeState.CREATING, VolumeState.PURGING]),
                name="volume_in_flight",
            ),
            models.Index(fields=["organization", "state", "-created_at"], name="volume_org_list"),
        ]

    def __str__(self) -> str:
        return self.slug

    @property
    def is_live(self) -> bool:
        return self.state in LIVE_STATES

    @property
    def in_flight(self) -> bool:
        return self.state in (VolumeState.CREATING, VolumeState.PURGING) or self.resizing_to is not None


class AttachmentQuerySet(models.QuerySet["Attachment"]):
    def live(self) -> AttachmentQuerySet:
        return self.filter(detached_at__isnull=True)


class Attachment(models.Model):
    """A volume mounted into a sandbox. The row stays after detach, as history."""

    volume = models.ForeignKey(Volume, on_delete=models.PROTECT, related_name="attachments")
    sandbox = models.ForeignKey("sandboxes.Sandbox", on_delete=models.CASCADE, related_name="attachments")
    mount_path = models.CharField(max_length=200)
    read_only = models.BooleanField(default=False)
    attached_at = models.DateTimeField(default=timezone.now)
    detached_at = models.DateTimeField(null=True, blank=True)

    objects = AttachmentQuerySet.as_manager()

    class Meta:
        ordering = ["-attached_at"]
        constraints = [
            # The last line of defence for "one writer at a time": even two requests that
            # both passed the row-locked check cannot both insert a live read-write row.
            models.UniqueConstraint(
                fields=["volume"],
                condition=models.Q(detached_at__isnull=True, read_only=False),
                name="one_live_writer_per_volume",
            ),
            models.UniqueConstraint(fields=["sandbox", "mount_path"], name="one_volume_per_mount_path"),
        ]

    def __str__(self) -> str:
        return f"{self.volume} at {self.mount_path}"
