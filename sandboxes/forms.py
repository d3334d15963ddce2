"""Page forms for sandboxes.

The create form is a plain form plus three small formsets of rows (mounts, env, labels). It
only collects the input and turns it into the arguments of ``services.sandbox_create``; the
service runs every rule, so the page and the API can never disagree.
"""

from __future__ import annotations

from typing import Any

from django import forms

from sandboxes.models import Image
from volumes.models import Region

LIFETIMES = [
    ("15m", "15 minutes"),
    ("30m", "30 minutes"),
    ("1h", "1 hour"),
    ("4h", "4 hours"),
    ("24h", "24 hours"),
]
DEFAULT_LIFETIME = "30m"
ROW_KINDS = ("mounts", "env", "labels")


def image_choices() -> list[tuple[str, str]]:
    return [("host", "host · the node's own /usr"), *((i.name, i.name) for i in Image.objects.all())]


def region_choices() -> list[tuple[str, str]]:
    return [(r.code, f"{r.code} · {r.name}") for r in Region.objects.order_by("code")]


class SandboxCreateForm(forms.Form):
    image = forms.ChoiceField()
    region = forms.ChoiceField()
    lifetime = forms.ChoiceField(choices=LIFETIMES, initial=DEFAULT_LIFETIME)
    allow_net = forms.BooleanField(required=False)
    memory_limit = forms.CharField(max_length=40, required=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["image"].choices = image_choices()  # type: ignore[attr-defined]
        self.fields["region"].choices = region_choices()  # type: ignore[attr-defined]


class MountForm(forms.Form):
    path = forms.CharField(max_length=200, required=False)
    volume = forms.CharField(max_length=100, required=False)  # an existing volume, from the select
    new_slug = forms.CharField(max_length=100, required=False)  # or a new one, created on first use
    size_gb = forms.IntegerField(min_value=1, required=False)
    read_only = forms.BooleanField(required=False)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        path, ref = (data.get("path") or "").strip(), self.ref
        if ref and not path:
            self.add_error("path", f'Where should "{ref}" be mounted? Give a path such as /workspace')
        elif path and not ref:
            self.add_error("volume", f"Choose a volume for {path}, or type a new volume's name")
        return data

    @property
    def ref(self) -> str:
        """The volume this row mounts: a new name typed in wins over the select."""
        data = getattr(self, "cleaned_data", {})
        return (data.get("new_slug") or "").strip() or (data.get("volume") or "").strip()

    def spec(self) -> str | dict[str, Any]:
        """The row as ``services.sandbox_create`` takes it: a slug, or {slug, sizeGb, read_only}."""
        data, ref = self.cleaned_data, self.ref
        if not data.get("read_only") and not data.get("size_gb"):
            return ref
        spec: dict[str, Any] = {"slug": ref, "read_only": bool(data.get("read_only"))}
        if data.get("size_gb") and data.get("new_slug"):
            spec["sizeGb"] = data["size_gb"]
        return spec


class KeyValueForm(forms.Form):
    key = forms.CharField(max_length=200, required=False)
    value = forms.CharField(max_length=4096, required=False, strip=False)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if (data.get("value") or "").strip() and not (data.get("key") or "").strip():
            self.add_error("key", "Give this value a name")
        return data


# Unbound, a form starts with one empty mount row and two empty rows of env and of labels.
MountFormSet = forms.formset_factory(MountForm, extra=1, max_num=20, absolute_max=20)
KeyValueFormSet = forms.formset_factory(KeyValueForm, extra=2, max_num=64, absolute_max=64)


def rows(kind: str, data: Any = None) -> forms.BaseFormSet:
    """The ``kind`` rows (mounts, env or labels), bound to ``data`` when it has them."""
    formset = MountFormSet if kind == "mounts" else KeyValueFormSet
    if data is not None and f"{kind}-TOTAL_FORMS" in data:
        return formset(data, prefix=kind)
    return formset(prefix=kind)


def with_one_more_row(data: Any, kind: str) -> Any:
    """A copy of the submitted data with one more (empty) ``kind`` row: the no-JS "add row"."""
    data = data.copy()
    key = f"{kind}-TOTAL_FORMS"
    try:
        data[key] = str(int(data.get(key) or 0) + 1)
    except ValueError:
        data[key] = "1"
    return data


def pairs(formset: forms.BaseFormSet, what: str) -> dict[str, str]:
    """The filled key/value rows as a dict; a key given twice is the formset's error."""
    result: dict[str, str] = {}
    for form in formset.forms:
        key = (form.cleaned_data.get("key") or "").strip()
        if not key:
            continue
        if key in result:
            form.add_error("key", f'{what} "{key}" is given twice')
        result[key] = form.cleaned_data.get("value") or ""
    return result


def mounts(formset: forms.BaseFormSet) -> dict[str, Any]:
    """The filled mount rows as the ``volumes`` map; a path given twice is that row's error."""
    result: dict[str, Any] = {}
    for form in formset.forms:
        path = (form.cleaned_data.get("path") or "").strip()
        if not path or not form.ref:
            continue
        if path in result:
            form.add_error("path", f'Mount path "{path}" is used twice')
        result[path] = form.spec()
    return result


class ExecForm(forms.Form):
    cmd = forms.CharField(max_length=10_000, strip=False)
    cwd = forms.CharField(max_length=500, required=False)
    timeout = forms.FloatField(required=False, min_value=0.1, max_value=3600)
    background = forms.BooleanField(required=False)

    def clean_cmd(self) -> str:
        cmd: str = self.cleaned_data["cmd"]
        if not cmd.strip():
            raise forms.ValidationError("Type a command to run")
        return cmd


class UploadForm(forms.Form):
    path = forms.CharField(max_length=1000)
    file = forms.FileField(required=False)
    content = forms.CharField(required=False, strip=False, widget=forms.Textarea(attrs={"rows": 4}))

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        path = (data.get("path") or "").strip()
        upload = data.get("file")
        if upload and path.endswith("/"):
            path += upload.name
        if path and not path.startswith("/"):
            self.add_error("path", f'"{path}" must be an absolute path, such as /workspace/notes.txt')
        elif path.endswith("/"):
            self.add_error("path", "Give the file's name at the end of the path, or choose a file to upload")
        data["path"] = path
        return data

    def payload(self) -> bytes:
        upload = self.cleaned_data.get("file")
        if upload:
            return bytes(upload.read())
        return str(self.cleaned_data.get("content") or "").encode()
