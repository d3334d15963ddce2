from __future__ import annotations

from django.core.validators import RegexValidator
from django.db import models

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
