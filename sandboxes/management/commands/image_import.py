from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from dashboard.errors import BerthError
from dashboard.models import Via
from dashboard.services import Actor
from sandboxes.services import image_import


class Command(BaseCommand):
    help = "Import a root filesystem tarball as a sandbox image on every active node."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name", help="the image name, e.g. alpine")
        parser.add_argument("tarball", help="a .tar, .tar.gz or .tar.xz of a root filesystem with /bin/sh")
        parser.add_argument("--description", default="")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            image = image_import(
                name=options["name"], tarball=options["tarball"], description=options["description"],
                actor=Actor(via=Via.CLI),
            )  # fmt: skip
        except BerthError as error:
            raise CommandError(error.message) from None
        self.stdout.write(self.style.SUCCESS(f"Imported image {image.name} ({image.size} bytes)"))
