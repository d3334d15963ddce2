"""The ``berth`` command against a live server, in process (``main(argv)``) and as the installed script."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from berth.cli import main

from tests.client.conftest import Server

pytestmark = pytest.mark.django_db(transaction=True)


def berth(server: Server, *argv: str) -> tuple[int, str, str]:
    """Run ``berth argv...`` in process with BERTH_URL/BERTH_TOKEN set; (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    saved = {k: os.environ.get(k) for k in ("BERTH_URL", "BERTH_TOKEN")}
    os.environ.update(BERTH_URL=server.url, BERTH_TOKEN=server.token)
    try:
        code = main(list(argv), stdout=out, stderr=err)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return code, out.getvalue(), err.getvalue()


def test_volumes_create_ls_show_and_rm(server: Server) -> None:
    code, out, err = berth(
        server,
        "volumes",
        "create",
        "my_project",
        "--region",
        "ord",
        "--capacity",
        "2GB",
        "--label",
        "team=web",
    )
    assert (code, err) == (0, "")
    assert "my_project" in out and "2.0 GB" in out and "team=web" in out
    berth(server, "volumes", "create", "other", "--region", "ams")

    code, out, _ = berth(server, "volumes", "ls", "--json")
    listed = json.loads(out)
    assert code == 0
    assert [(v["slug"], v["region"], v["capacity"], v["labels"]) for v in listed] == [
        ("other", "ams", 1_000_000_000, {}),
        ("my_project", "ord", 2_000_000_000, {"team": "web"}),
    ]

    code, out, _ = berth(server, "volumes", "ls", "--region", "ord")
    header, row = out.splitlines()
    assert header.split() == ["SLUG", "REGION", "CAPACITY", "USED", "STATUS", "ATTACHED", "LABELS", "ID"]
    assert header.index("REGION") == row.index("ord")  # aligned columns
    assert json.loads(berth(server, "volumes", "show", "my_project", "--json")[1])["slug"] == "my_project"

    code, out, _ = berth(server, "volumes", "rm", "my_project")
    assert code == 0 and out.startswith("Deleted my_project; restorable from Trash until ")
    assert berth(server, "volumes", "show", "my_project") == (1, "", 'berth: No volume "my_project"\n')


def test_sandboxes_run_prints_the_output_and_exits_with_the_commands_code(server: Server) -> None:
    code, out, err = berth(
        server,
        "sandboxes",
        "run",
        "--region",
        "ord",
        "-v",
        "my_project:/workspace",
        "-e",
        "WHO=berth",
        "--label",
        "ci=yes",
        "--",
        "sh",
        "-c",
        "echo hi $WHO > /workspace/f; cat /workspace/f; echo bad >&2; exit 7",
    )
    assert (code, out, err) == (7, "hi berth\n", "bad\n")
    code, out, _ = berth(server, "sandboxes", "ls", "--label", "ci:yes", "--json")
    assert [s["status"] for s in json.loads(out)] == ["stopped"]  # killed after the command

    code, out, _ = berth(
        server, "sandboxes", "run", "--region", "ord", "-v", "my_project:/w:ro", "--", "cat /w/f"
    )
    assert (code, out) == (0, "hi berth\n")


def test_sandboxes_exec_and_kill_a_kept_sandbox(server: Server) -> None:
    code, _, err = berth(server, "sandboxes", "run", "--region", "ord", "--keep", "--", "true")
    assert code == 0 and "is still running" in err
    sandbox_id = err.split("sandbox ")[1].split()[0]
    assert berth(server, "sandboxes", "exec", sandbox_id, "--", "echo", "a b") == (0, "a b\n", "")
    code, out, _ = berth(server, "sandboxes", "ls")
    assert out.splitlines()[0].split()[:3] == ["ID", "NAME", "STATUS"] and "running" in out
    assert berth(server, "sandboxes", "kill", sandbox_id) == (0, f"{sandbox_id} stopped\n", "")


def test_errors_print_the_apis_message_and_usage_errors_exit_2(server: Server) -> None:
    assert berth(server, "sandboxes", "run", "--region", "ord", "-v", "nope:/proc", "--", "true")[0] == 1
    code, _, err = berth(server, "volumes", "create", "Bad Slug", "--region", "ord")
    assert code == 1 and err.startswith("berth: ") and "slug" in err.lower()
    assert berth(server, "sandboxes", "run", "--region", "ord", "-v", "nocolon")[0] == 2
    assert berth(server, "sandboxes", "run", "--region", "ord")[0] == 2  # no command
    assert berth(server, "volumes", "frobnicate")[0] == 2


def test_regions_prints_a_table(server: Server) -> None:
    code, out, _ = berth(server, "regions")
    lines = out.splitlines()
    assert code == 0
    assert lines[0].split() == ["CODE", "NAME", "MIN", "CAPACITY", "MAX", "CAPACITY", "NODES"]
    assert {line.split()[0] for line in lines[1:]} >= {"ord", "ams", "iad", "lax"}
    ord_row = next(line for line in lines if line.startswith("ord "))
    assert ord_row[lines[0].index("MIN CAPACITY") :].startswith("300.0 MB")


def test_the_installed_script_runs_and_says_what_is_missing(server: Server, tmp_path: Path) -> None:
    script = shutil.which("berth", path=os.path.dirname(sys.executable))
    assert script, "the berth console script is not installed next to this Python: pip install -e ./client"
    env = {**os.environ, "BERTH_URL": server.url, "BERTH_TOKEN": server.token}
    done = subprocess.run([script, "regions", "--json"], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "ord" in {r["code"] for r in json.loads(done.stdout)}
    env.pop("BERTH_TOKEN")
    done = subprocess.run(
        [script, "regions"], env=env, capture_output=True, text=True, timeout=60, cwd=tmp_path
    )
    assert done.returncode == 2
    assert done.stderr.startswith("berth: No API token: pass token=... or set BERTH_TOKEN")
