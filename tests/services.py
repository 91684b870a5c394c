"""Real servers for tests, started by the test set-up: a `chroma run` server and a PostgreSQL from Debian's packages.

Both are pytest fixtures in tests/conftest.py; both skip with a clear message where the server cannot be had.
PostgreSQL is installed with ``apt-get install postgresql`` when its binaries are missing and the tests run as
root (as in CI on a new machine); the cluster is a throwaway one in a temporary directory, on a free port of
127.0.0.1, with ``fsync`` off.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Iterator


class Unavailable(Exception):
    """The server cannot be had here; the message says why (tests skip with it)."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def chroma_server(data_dir: Path) -> Iterator[str]:
    """`chroma run` on a free 127.0.0.1 port; yields its URL."""
    exe = shutil.which("chroma") or str(Path(sys.executable).with_name("chroma"))
    if not Path(exe).exists():
        raise Unavailable("the chroma CLI (from the chromadb package) is not installed")
    port = free_port()
    proc = subprocess.Popen([exe, "run", "--path", str(data_dir), "--host", "127.0.0.1", "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"{url}/api/v2/heartbeat", timeout=1)
                break
            except OSError:
                if proc.poll() is not None:
                    raise RuntimeError(f"chroma run exited with {proc.returncode}") from None
                if time.monotonic() > deadline:
                    raise RuntimeError("the chroma server did not start within 30 s") from None
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


# --- PostgreSQL --------------------------------------------------------------------------------------------------
def _postgres_bin() -> Path | None:
    """The directory with initdb and pg_ctl: on PATH, or Debian's /usr/lib/postgresql/<version>/bin (newest)."""
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).resolve().parent
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    return Path(found[-1]).parent if found else None


def _install_postgres() -> None:
    """``apt-get install postgresql`` (Debian's packages), as root only; Unavailable with the reason if not."""
    if os.name != "posix" or os.geteuid() != 0 or not shutil.which("apt-get"):
        raise Unavailable("PostgreSQL is not installed, and installing it needs root and apt-get "
                          "(apt-get install postgresql)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-q", "--no-install-recommends", "postgresql"]
    for attempt in (install, ["apt-get", "update", "-q"], install):
        done = subprocess.run(attempt, env=env, capture_output=True, text=True, timeout=900)
        if done.returncode == 0 and attempt is install:
            return
    raise Unavailable(f"apt-get install postgresql failed: {(done.stderr or done.stdout).strip()[-300:]}")


def _as_owner(user: str | None, argv: list[str]) -> list[str]:
    return ["runuser", "-u", user, "--", *argv] if user else argv


@contextlib.contextmanager
def postgres_server() -> Iterator[str]:
    """A throwaway PostgreSQL cluster on a free 127.0.0.1 port; yields a SQLAlchemy URL (psycopg 3) of an empty
    database ``supportbot``. Installs Debian's PostgreSQL first if it is missing and we are root."""
    try:
        import psycopg
    except ImportError:
        raise Unavailable("psycopg is not installed (pip install 'supportbot[postgres]')") from None
    bindir = _postgres_bin()
    if bindir is None:
        _install_postgres()
        bindir = _postgres_bin()
        if bindir is None:
            raise Unavailable("apt-get installed postgresql, but no initdb was found")
    owner = None
    if os.geteuid() == 0:  # initdb and postgres refuse to run as root: the Debian package's system user does
        import pwd

        try:
            pwd.getpwnam("postgres")
        except KeyError:
            raise Unavailable("running as root and there is no 'postgres' user to run the server as") from None
        if not shutil.which("runuser"):
            raise Unavailable("running as root and runuser (util-linux) is missing")
        owner = "postgres"
    root = Path(tempfile.mkdtemp(prefix="supportbot-pg-"))
    if owner:
        shutil.chown(root, owner)
    data, log = root / "data", root / "server.log"
    port = free_port()
    started = False
    try:
        subprocess.run(_as_owner(owner, [str(bindir / "initdb"), "-D", str(data), "-U", "supportbot", "-A", "trust",
                                         "-E", "UTF8", "--no-sync"]), check=True, capture_output=True, timeout=120)
        options = f"-c listen_addresses=127.0.0.1 -p {port} -k {root} -c fsync=off -c max_connections=100"
        done = subprocess.run(_as_owner(owner, [str(bindir / "pg_ctl"), "-D", str(data), "-l", str(log), "-w",
                                                "-t", "60", "-o", options, "start"]), capture_output=True, timeout=90)
        if done.returncode != 0:
            tail = log.read_text(errors="replace")[-500:] if log.exists() else done.stderr.decode()[-500:]
            raise RuntimeError(f"pg_ctl start failed: {tail}")
        started = True
        with psycopg.connect(f"host=127.0.0.1 port={port} user=supportbot dbname=postgres",
                             autocommit=True) as conn:
            conn.execute("CREATE DATABASE supportbot")
        yield f"postgresql+psycopg://supportbot@127.0.0.1:{port}/supportbot"
    finally:
        if started:
            subprocess.run(_as_owner(owner, [str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w",
                                             "stop"]), capture_output=True, timeout=60)
        shutil.rmtree(root, ignore_errors=True)
