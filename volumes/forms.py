"""Page forms for volumes. They collect input and run the same rules the services run
(``volumes.rules``), so a page can show each message under its field while the user types;
the service checks everything again when the form is submitted.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from django import forms

from dashboard.errors import BerthError
from volumes.models import Region
from volumes.rules import (
    DEFAULT_CAPACITY,
    check_capacity_in_region,
    parse_capacity,
    region_by_code,
    validate_slug,
)
from volumes.services import validate_labels

T = TypeVar("T")


def _rule(check: Callable[..., T], *args: Any) -> T:
    """Run a rule; its domain error becomes the field's validation error."""
    try:
        return check(*args)
    except BerthError as error:
        raise forms.ValidationError(error.message) from None


def labels_parse(text: str) -> dict[str, str]:
    """``key=value`` lines (blank lines are skipped) into a dict, checked by the label rules."""
    labels: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        key, sep, value = line.partition("=")
        if not sep:
            raise forms.ValidationError(f'Line {number} "{line.strip()[:40]}": write labels as key=value')
        labels[key.strip()] = value.strip()
    return _rule(validate_labels, labels)


def labels_text(labels: dict[str, str]) -> str:
    return "\n".join(f"{key}={value}" for key, value in labels.items())


class LabelsField(forms.CharField):
    widget = forms.Textarea(attrs={"rows": 3})

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(required=False, strip=False, **kwargs)

    def clean(self, value: Any) -> dict[str, str]:
        return labels_parse(super().clean(value) or "")


class VolumeCreateForm(forms.Form):
    slug = forms.CharField(max_length=100)
    region = forms.CharField(max_length=20)
    capacity = forms.CharField(max_length=40, required=False)
    description = forms.CharField(max_length=1000, required=False, widget=forms.Textarea(attrs={"rows": 2}))
    labels = LabelsField()

    parsed_capacity: int | None = None

    def clean_slug(self) -> str:
        return _rule(validate_slug, self.cleaned_data["slug"].strip())

    def clean_region(self) -> Region:
        return _rule(region_by_code, self.cleaned_data["region"].strip())

    def clean_capacity(self) -> int:
        self.parsed_capacity = _rule(parse_capacity, self.cleaned_data["capacity"].strip())
        return self.parsed_capacity

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if isinstance(data.get("region"), Region) and data.get("capacity"):
            try:
                check_capacity_in_region(data["capacity"], data["region"])
            except BerthError as error:
                self.add_error("capacity", error.message)
        return data

    @property
    def capacity_is_default(self) -> bool:
        return self.parsed_capacity == DEFAULT_CAPACITY and not (self.data.get("capacity") or "").strip()


class VolumeEditForm(forms.Form):
    description = forms.CharField(max_length=1000, required=False, widget=forms.Textarea(attrs={"rows": 3}))
    labels = LabelsField()


class VolumeExtendForm(forms.Form):
    capacity = forms.CharField(max_length=40)

    def clean_capacity(self) -> int:
        return _rule(parse_capacity, self.cleaned_data["capacity"].strip())


class VolumeDeleteForm(forms.Form):
    confirm = forms.CharField(max_length=100, required=False)

    def __init__(self, *args: Any, slug: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.slug = slug

    def clean_confirm(self) -> str:
        typed = self.cleaned_data["confirm"].strip()
        if typed != self.slug:
            raise forms.ValidationError(f'Type "{self.slug}" to confirm that you want to delete this volume')
        return typed


class VolumeRestoreForm(forms.Form):
    new_slug = forms.CharField(max_length=100, required=False)
