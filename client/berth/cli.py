"""The ``berth`` command: volumes, sandboxes and regions from a shell.

Tables for people, ``--json`` for scripts. Errors print ``berth: <message>`` on stderr and
exit 1 (2 for a usage error); ``sandboxes run`` and ``sandboxes exec`` exit with the
command's own exit code (124 if it timed out).
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import sys
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import IO, Any

from berth.client import Client, Sandbox
from berth.errors import BerthError, ConfigurationError
from berth.models import ExecResult

TIMED_OUT = 124  # like timeout(1)


class Usage(Exception):
    """A command line that makes no sense: exit 2."""


# --- output ---------------------------------------------------------------------------------


def size(value: int | None) -> str:
    """Bytes for a person, in the decimal units capacities are usually given in."""
    if value is None:
        return "-"
    amount = float(value)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if amount < 1000 or unit == "TB":
            return f"{int(amount)} {unit}" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1000
    raise AssertionError("unreachable")


def when(value: datetime | None) -> str:
    return value.astimezone().strftime("%Y-%m-%d %H:%M") if value else "-"


def labels_text(labels: dict[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items())) or "-"


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]], out: IO[str]) -> None:
    """Aligned columns; the last one is not padded."""
    cells = [[str(h) for h in headers], *([str(c) for c in row] for row in rows)]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    for row in cells:
        line = "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row[:-1]))
        out.write(f"{line}  {row[-1]}".rstrip() + "\n" if len(row) > 1 else row[0] + "\n")


def plain(value: Any) -> Any:
    """A model (or a list of them) as JSON-ready data."""
    if isinstance(value, Sandbox):
        return {k: plain(v) for k, v in vars(value).items() if not k.startswith("_") and k != "files"}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def print_json(value: Any, out: IO[str]) -> None:
    out.write(json.dumps(plain(value), indent=2) + "\n")


class Spinner:
    """A one-line progress indicator on stderr, only when stderr is a terminal."""

    FRAMES = "|/-\\"

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self.enabled = stream.isatty()
        self.message = ""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def update(self, message: str) -> None:
        self.message = message

    def _spin(self) -> None:
        for frame in itertools.cycle(self.FRAMES):
            if self._stop.wait(0.1):
                return
            self.stream.write(f"\r{frame} {self.message}\033[K")
            self.stream.flush()

    def __enter__(self) -> Spinner:
        if self.enabled:
            self._thread = threading.Thread(target=self._spin, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._thread:
            self._stop.set()
            self._thread.join()
            self.stream.write("\r\033[K")
            self.stream.flush()


@contextmanager
def progress(args: argparse.Namespace, message: str) -> Iterator[Callable[[str], None]]:
    with Spinner(args.stderr) as spinner:
        spinner.update(message)
        yield spinner.update


# --- parsing helpers --------------------------------------------------------------------------


def pairs(values: Sequence[str] | None, what: str, sep: str = "=") -> dict[str, str]:
    result: dict[str, str] = {}
    for value in values or ():
        key, found, rest = value.partition(sep)
        if not found or not key:
            raise Usage(f"{what} must look like KEY{sep}VALUE, not {value!r}")
        result[key] = rest
    return result


def mounts(values: Sequence[str] | None) -> dict[str, Any]:
    """``-v name:/path[:ro|:rw]`` as the API's ``volumes`` map."""
    result: dict[str, Any] = {}
    for value in values or ():
        parts = value.split(":")
        if len(parts) not in (2, 3) or not parts[0] or not parts[1].startswith("/"):
            raise Usage(f"-v must look like VOLUME:/path or VOLUME:/path:ro, not {value!r}")
        mode = parts[2] if len(parts) == 3 else "rw"
        if mode not in ("ro", "rw"):
            raise Usage(f"the mode in -v {value!r} must be ro or rw")
        name, path = parts[0], parts[1]
        if mode == "rw":
            result[path] = name
        else:
            result[path] = {("id" if _is_uuid(name) else "slug"): name, "read_only": True}
    return result


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def command_of(args: argparse.Namespace) -> str | list[str]:
    """One word is a shell string (``-- 'make && make test'``); several are an argv list."""
    words: list[str] = args.after_dashes if args.after_dashes is not None else list(args.cmd)
    if not words:
        raise Usage("give the command to run after --, such as: -- npm test")
    return words[0] if len(words) == 1 else words


# --- commands ---------------------------------------------------------------------------------


def volumes_ls(client: Client, args: argparse.Namespace) -> int:
    found = list(client.volumes.list(search=args.search, region=args.region, state=args.state))
    if args.json:
        print_json(found, args.stdout)
        return 0
    rows = [
        (
            v.slug,
            v.region,
            size(v.capacity),
            size(v.used),
            v.status,
            ",".join(a.sandbox_id[:8] + (" (ro)" if a.read_only else "") for a in v.attached_to) or "-",
            labels_text(v.labels),
            v.id,
        )
        for v in found
    ]
    table(("SLUG", "REGION", "CAPACITY", "USED", "STATUS", "ATTACHED", "LABELS", "ID"), rows, args.stdout)
    return 0


def volumes_create(client: Client, args: argparse.Namespace) -> int:
    volume = client.volumes.create(
        slug=args.slug,
        region=args.region,
        capacity=args.capacity,
        labels=pairs(args.label, "--label"),
        description=args.description,
    )
    return show_volume(volume, args)


def volumes_show(client: Client, args: argparse.Namespace) -> int:
    return show_volume(client.volumes.get(args.volume), args)


def show_volume(volume: Any, args: argparse.Namespace) -> int:
    if args.json:
        print_json(volume, args.stdout)
        return 0
    rows = [
        ("id", volume.id),
        ("slug", volume.slug),
        ("region", volume.region),
        ("status", volume.status),
        ("capacity", size(volume.capacity)),
        ("used", f"{size(volume.used)} as of {when(volume.used_at)}"),
        ("labels", labels_text(volume.labels)),
        ("description", volume.description or "-"),
        ("created", when(volume.created_at)),
        (
            "attached to",
            ", ".join(
                f"{a.sandbox_id} at {a.mount_path}" + (" (ro)" if a.read_only else "")
                for a in volume.attached_to
            )
            or "-",
        ),
    ]
    if volume.error:
        rows.append(("error", volume.error))
    table(("FIELD", "VALUE"), rows, args.stdout)
    return 0


def volumes_rm(client: Client, args: argparse.Namespace) -> int:
    gone = [client.volumes.delete(name) for name in args.volumes]
    if args.json:
        print_json(gone, args.stdout)
        return 0
    for name, deleted in zip(args.volumes, gone, strict=True):
        args.stdout.write(f"Deleted {name}; restorable from Trash until {when(deleted.purge_after)}\n")
    return 0


def sandboxes_ls(client: Client, args: argparse.Namespace) -> int:
    found = list(client.sandboxes.list(label=args.label, status=args.status))
    if args.json:
        print_json(found, args.stdout)
        return 0
    rows = [
        (
            s.id,
            s.name,
            s.status,
            s.region,
            s.image,
            ",".join(f"{m.volume}:{m.path}" + (":ro" if m.read_only else "") for m in s.mounts) or "-",
            labels_text(s.labels),
            when(s.created_at),
        )
        for s in found
    ]
    table(("ID", "NAME", "STATUS", "REGION", "IMAGE", "MOUNTS", "LABELS", "CREATED"), rows, args.stdout)
    return 0


def report(result: ExecResult, args: argparse.Namespace) -> int:
    """Print a command's output (or its JSON) and return the exit code ``berth`` should end with."""
    if args.json:
        print_json(result, args.stdout)
    else:
        args.stdout.write(result.stdout)
        args.stdout.flush()
        args.stderr.write(result.stderr)
        if result.truncated:
            args.stderr.write("berth: the output was cut short by the server's limit\n")
        if result.timed_out:
            args.stderr.write("berth: the command timed out\n")
        if result.background:
            args.stdout.write(f"started in the background: pid {result.pid}, command {result.id}\n")
    if result.timed_out:
        return TIMED_OUT
    return 0 if result.background else (result.exit_code if result.exit_code is not None else 1)


def sandboxes_run(client: Client, args: argparse.Namespace) -> int:
    cmd = command_of(args)
    with progress(args, "starting the sandbox") as update:
        sandbox = client.sandboxes.create(
            region=args.region,
            image=args.image,
            volumes=mounts(args.volume),
            env=pairs(args.env, "-e"),
            labels=pairs(args.label, "--label"),
            lifetime=args.lifetime,
            allow_net=args.allow_net,
            memory_limit=args.memory,
            progress=update,
        )
    try:
        with progress(args, f"running in {sandbox.id}"):
            result = sandbox.exec(cmd, cwd=args.cwd, timeout=args.timeout)
    finally:
        if not args.keep:
            with progress(args, "stopping the sandbox"):
                sandbox.kill()
    if args.keep:
        args.stderr.write(f"berth: sandbox {sandbox.id} is still running\n")
    return report(result, args)


def sandboxes_exec(client: Client, args: argparse.Namespace) -> int:
    sandbox = client.sandboxes.get(args.sandbox)
    with progress(args, "running"):
        result = sandbox.exec(
            command_of(args),
            cwd=args.cwd,
            env=pairs(args.env, "-e"),
            timeout=args.timeout,
            background=args.background,
        )
    return report(result, args)


def sandboxes_kill(client: Client, args: argparse.Namespace) -> int:
    ended = []
    for sandbox_id in args.sandboxes:
        sandbox = client.sandboxes.get(sandbox_id)
        with progress(args, f"stopping {sandbox.id}"):
            ended.append(sandbox.kill(wait=not args.no_wait))
    if args.json:
        print_json(ended, args.stdout)
    else:
        for sandbox in ended:
            args.stdout.write(f"{sandbox.id} {sandbox.status}\n")
    return 0


def regions(client: Client, args: argparse.Namespace) -> int:
    found = client.regions()
    if args.json:
        print_json(found, args.stdout)
        return 0
    rows = [(r.code, r.name, size(r.min_capacity), size(r.max_capacity), r.nodes) for r in found]
    table(("CODE", "NAME", "MIN CAPACITY", "MAX CAPACITY", "NODES"), rows, args.stdout)
    return 0


# --- the parser -----------------------------------------------------------------------------


def parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", help="print JSON instead of a table")
    common.add_argument("--url", help="the server (default: $BERTH_URL)")
    common.add_argument("--token", help="an API token (default: $BERTH_TOKEN)")

    top = argparse.ArgumentParser(
        prog="berth", description="Volumes and the sandboxes that mount them.", parents=[common]
    )
    groups = top.add_subparsers(dest="group", required=True, metavar="{volumes,sandboxes,regions}")

    volumes = groups.add_parser("volumes", help="persistent volumes").add_subparsers(
        dest="action", required=True
    )
    ls = volumes.add_parser("ls", parents=[common], help="list volumes")
    ls.add_argument("--search", default="", help="part of the slug or description")
    ls.add_argument("--region", default="")
    ls.add_argument("--state", choices=["creating", "available", "error"])
    ls.set_defaults(run=volumes_ls)
    create = volumes.add_parser("create", parents=[common], help="create a volume")
    create.add_argument("slug")
    create.add_argument("--region", required=True)
    create.add_argument(
        "--capacity", default="1GB", help="bytes, or a size such as 2GB or 1GiB (default 1GB)"
    )
    create.add_argument("--label", action="append", metavar="KEY=VALUE")
    create.add_argument("--description", default="")
    create.set_defaults(run=volumes_create)
    show = volumes.add_parser("show", parents=[common], help="show one volume")
    show.add_argument("volume", metavar="ID_OR_SLUG")
    show.set_defaults(run=volumes_show)
    rm = volumes.add_parser("rm", parents=[common], help="delete volumes (restorable from Trash for 24 h)")
    rm.add_argument("volumes", nargs="+", metavar="ID_OR_SLUG")
    rm.set_defaults(run=volumes_rm)

    sandboxes = groups.add_parser("sandboxes", help="sandboxes").add_subparsers(dest="action", required=True)
    sls = sandboxes.add_parser("ls", parents=[common], help="list sandboxes")
    sls.add_argument("--label", help="KEY:VALUE")
    sls.add_argument(
        "--status", choices=["pending", "starting", "running", "stopping", "stopped", "failed", "expired"]
    )
    sls.set_defaults(run=sandboxes_ls)
    run = sandboxes.add_parser(
        "run",
        parents=[common],
        help="start a sandbox, run a command, kill it; exit with the command's code",
        usage="berth sandboxes run --region REGION [-v VOLUME:/path[:ro]] [-e K=V] [--label K=V] -- CMD...",
    )
    run.add_argument("--region", required=True)
    run.add_argument("--image", default="host")
    run.add_argument("-v", "--volume", action="append", metavar="VOLUME:/path[:ro]")
    run.add_argument("-e", "--env", action="append", metavar="KEY=VALUE")
    run.add_argument("--label", action="append", metavar="KEY=VALUE")
    run.add_argument("--lifetime", help="seconds, or 30m, 2h")
    run.add_argument("--memory", help="memory limit: bytes or 512MiB")
    run.add_argument("--allow-net", action="store_true", help="let the sandbox reach the network")
    run.add_argument("--cwd")
    run.add_argument("--timeout", type=float, help="seconds the command may run (server default 60)")
    run.add_argument("--keep", action="store_true", help="leave the sandbox running afterwards")
    run.add_argument("cmd", nargs="*", help=argparse.SUPPRESS)
    run.set_defaults(run=sandboxes_run)
    ex = sandboxes.add_parser(
        "exec",
        parents=[common],
        help="run a command in a running sandbox",
        usage="berth sandboxes exec SANDBOX_ID [--cwd DIR] [-e K=V] -- CMD...",
    )
    ex.add_argument("sandbox", metavar="SANDBOX_ID")
    ex.add_argument("-e", "--env", action="append", metavar="KEY=VALUE")
    ex.add_argument("--cwd")
    ex.add_argument("--timeout", type=float)
    ex.add_argument("--background", action="store_true", help="answer at once with the process id")
    ex.add_argument("cmd", nargs="*", help=argparse.SUPPRESS)
    ex.set_defaults(run=sandboxes_exec)
    kill = sandboxes.add_parser("kill", parents=[common], help="kill sandboxes")
    kill.add_argument("sandboxes", nargs="+", metavar="SANDBOX_ID")
    kill.add_argument("--no-wait", action="store_true", help="do not wait until it has stopped")
    kill.set_defaults(run=sandboxes_kill)

    reg = groups.add_parser("regions", parents=[common], help="regions and their capacity limits")
    reg.set_defaults(run=regions)
    return top


def main(
    argv: Sequence[str] | None = None, *, stdout: IO[str] | None = None, stderr: IO[str] | None = None
) -> int:
    """Run the command line; returns the exit status (the console script exits with it)."""
    words = list(sys.argv[1:] if argv is None else argv)
    out, err = stdout or sys.stdout, stderr or sys.stderr
    after: list[str] | None = None
    if "--" in words:  # everything after the first -- is the command to run, untouched
        at = words.index("--")
        words, after = words[:at], words[at + 1 :]
    top = parser()
    try:
        args = top.parse_args(words)
    except SystemExit as exit_:  # argparse has printed the usage and the problem
        return int(exit_.code or 0)
    args.after_dashes, args.stdout, args.stderr = after, out, err
    if after is not None and args.run not in (sandboxes_run, sandboxes_exec):
        err.write("berth: only `sandboxes run` and `sandboxes exec` take a command after --\n")
        return 2
    try:
        with Client(token=args.token, base_url=args.url) as client:
            return int(args.run(client, args))
    except (Usage, ConfigurationError) as error:
        err.write(f"berth: {error}\n")
        return 2
    except BerthError as error:
        err.write(f"berth: {error.message}\n")
        return 1
    except KeyboardInterrupt:
        err.write("berth: interrupted\n")
        return 130
