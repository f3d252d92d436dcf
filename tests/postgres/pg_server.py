"""A throwaway PostgreSQL for the tests, on a Unix socket in a temp folder.

`initdb` runs once per test session into a template folder; each test module gets a copy and
its own server (`postgres -D copy -k copy`, no TCP). PostgreSQL refuses to run as root, so as
root the server runs as a dedicated system user (``hive_pg``, created on first use) through
``setpriv``; as any other user it runs as that user. fsync stays on (crash tests rely on it).

Where the server is missing: under CI (``HIVE_ACTORS_CI`` or ``CI`` set) the fixture fails,
elsewhere it skips and says why (`make test` and `.ci/run` install Debian's ``postgresql``).
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import attrs

PG_USER = "hive_pg"  # the OS user the server runs as when the tests run as root
DB_USER = "hive"  # the database superuser initdb creates (trust auth on the socket)


class NoServer(Exception):
    """PostgreSQL cannot be started here; the message says why."""


def find_bin_dir() -> Path:
    """The folder holding ``initdb`` and ``postgres``. Raises NoServer."""
    on_path = shutil.which("initdb")
    if on_path and shutil.which("postgres"):
        return Path(os.path.realpath(on_path)).parent
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"))
    if found:
        return Path(found[-1]).parent
    raise NoServer("no PostgreSQL server (initdb/postgres) on PATH or in /usr/lib/postgresql; "
                   "`make test` installs Debian's postgresql package as root")


def _run_as() -> list[str]:
    """The command prefix that runs the server as a non-root user (empty if not root)."""
    if os.getuid() != 0:
        return []
    if subprocess.run(["id", "-u", PG_USER], capture_output=True).returncode != 0:
        made = subprocess.run(["useradd", "--system", "--no-create-home", "--shell",
                               "/usr/sbin/nologin", PG_USER], capture_output=True, text=True)
        if made.returncode != 0:
            raise NoServer(f"cannot create the user {PG_USER!r} to run PostgreSQL as "
                           f"(it refuses root): {made.stderr.strip()}")
    return ["setpriv", f"--reuid={PG_USER}", f"--regid={PG_USER}", "--init-groups", "--"]


def _give_to_server(path: Path) -> None:
    if os.getuid() == 0:
        subprocess.run(["chown", "-R", f"{PG_USER}:{PG_USER}", str(path)], check=True)


def make_template(bin_dir: Path) -> Path:
    """A fresh cluster made by initdb in a new temp folder. Raises NoServer."""
    root = Path(tempfile.mkdtemp(prefix="hive-pg-template-"))
    os.chmod(root, 0o755)
    data = root / "data"
    prefix = _run_as()
    _give_to_server(root)
    made = subprocess.run(
        [*prefix, str(bin_dir / "initdb"), "-D", str(data), "-U", DB_USER, "--auth=trust",
         "--no-instructions", "-E", "UTF8", "--locale=C"],
        capture_output=True, text=True)
    if made.returncode != 0:
        raise NoServer(f"initdb failed: {made.stderr.strip()[-500:]}")
    return data


@attrs.define
class PgServer:
    """One running server; ``url`` is a libpq URL over its socket."""

    folder: Path
    process: subprocess.Popen[bytes]

    @property
    def socket_dir(self) -> Path:
        return self.folder

    @property
    def url(self) -> str:
        return f"postgresql://{DB_USER}@/postgres?host={self.folder}"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)  # fast shutdown: ends client sessions
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_server(bin_dir: Path, template: Path,
                 settings: Sequence[str] = ()) -> PgServer:
    """A copy of ``template`` served on a socket in its own temp folder. Raises NoServer."""
    folder = Path(tempfile.mkdtemp(prefix="hive-pg-"))
    os.chmod(folder, 0o755)
    data = folder / "data"
    shutil.copytree(template, data, symlinks=True)
    os.chmod(data, 0o700)
    _give_to_server(folder)
    conf = ["-c", "listen_addresses=", "-c", f"unix_socket_directories={folder}",
            "-c", "fsync=on", "-c", "max_connections=200", "-c", "shared_buffers=32MB"]
    for s in settings:
        conf += ["-c", s]
    proc = subprocess.Popen([*_run_as(), str(bin_dir / "postgres"), "-D", str(data), *conf],
                            stdout=subprocess.DEVNULL, stderr=open(folder / "server.log", "wb"))
    server = PgServer(folder, proc)
    ready = bin_dir / "pg_isready"
    # start-up is bounded: a server not accepting connections after 60 s is reported
    for _ in range(600):
        if proc.poll() is not None:
            log = (folder / "server.log").read_text(errors="replace")[-800:]
            raise NoServer(f"postgres exited with {proc.returncode} at start: {log}")
        ok = subprocess.run([str(ready), "-q", "-h", str(folder), "-U", DB_USER],
                            capture_output=True).returncode == 0
        if ok:
            return server
        time.sleep(0.1)  # polling an external process's start-up, not a test's timing
    server.stop()
    raise NoServer("postgres did not accept connections within 60 s")


def in_ci() -> bool:
    return bool(os.environ.get("HIVE_ACTORS_CI") or os.environ.get("CI"))


@contextmanager
def running_server(template: Path, bin_dir: Path) -> Iterator[PgServer]:
    server = start_server(bin_dir, template)
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(server.folder, ignore_errors=True)


@contextmanager
def throwaway_server() -> Iterator[PgServer]:
    """A server of its own template, for a script (the benchmarks): everything removed after."""
    bin_dir = find_bin_dir()
    template = make_template(bin_dir)
    try:
        with running_server(template, bin_dir) as server:
            yield server
    finally:
        shutil.rmtree(template.parent, ignore_errors=True)
