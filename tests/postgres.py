"""A real PostgreSQL for tests: the machine's server on 127.0.0.1:5432, or a throwaway cluster started here.

``MLPLATFORM_TEST_POSTGRES_URL`` (an admin URL) overrides both. Debian's binaries must be installed
(``tests/setup/postgres.sh`` does that on a fresh machine).
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from contextlib import contextmanager
from pathlib import Path

import psycopg

from mlplatform.serving.processes import free_port

MACHINE_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"


def _answers(url: str) -> bool:
    try:
        with psycopg.connect(url, connect_timeout=3):
            return True
    except psycopg.OperationalError:
        return False


@contextmanager
def postgres_admin_url():
    """Yields an admin URL (database ``postgres``) of a running server; stops a cluster it started."""
    url = os.environ.get("MLPLATFORM_TEST_POSTGRES_URL") or (MACHINE_SERVER if _answers(MACHINE_SERVER) else None)
    if url:
        yield url
        return
    with postgres_cluster() as cluster:
        yield cluster.admin_url


class Cluster:
    """A throwaway PostgreSQL cluster (trust auth, loopback, its own socket folder) that a test may restart."""

    def __init__(self, bin_dir: Path, workdir: Path, port: int) -> None:
        self.bin_dir, self.workdir, self.port = bin_dir, workdir, port
        self.data = workdir / "pgdata"
        self.admin_url = f"postgresql://postgres@127.0.0.1:{port}/postgres"

    def pg_ctl(self, *arguments: str) -> None:
        command = [str(self.bin_dir / "pg_ctl"), "-D", str(self.data), "-l", str(self.workdir / "postgres.log")]
        options = f"-p {self.port} -k {self.workdir} -c listen_addresses=127.0.0.1 -c fsync=off"
        _as_postgres(*command, "-w", "-o", options, *arguments)

    def restart(self) -> None:
        """``pg_ctl restart -m fast``: every session is terminated, open transactions roll back."""
        self.pg_ctl("-m", "fast", "restart")


def _as_postgres(*command: str) -> None:
    subprocess.run(["runuser", "-u", "postgres", "--", *command], check=True, capture_output=True, timeout=120)


@contextmanager
def postgres_cluster():
    """Yields a ``Cluster`` started here (Debian's binaries), stopped and deleted afterwards."""
    binaries = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    if not binaries:
        raise RuntimeError(
            "no PostgreSQL server answers on 127.0.0.1:5432 and Debian's postgresql is not installed: "
            "run tests/setup/postgres.sh (make test does)"
        )
    workdir = Path(tempfile.mkdtemp(prefix="mlplatform-pg-"))  # outside pytest's root-only tmp: postgres reads it
    cluster = Cluster(Path(binaries[-1]).parent, workdir, free_port())
    cluster.data.mkdir(parents=True)
    postgres_user = pwd.getpwnam("postgres")
    shutil.chown(workdir, postgres_user.pw_uid, postgres_user.pw_gid)
    shutil.chown(cluster.data, postgres_user.pw_uid, postgres_user.pw_gid)
    try:
        _as_postgres(str(cluster.bin_dir / "initdb"), "-D", str(cluster.data), "-A", "trust", "-U", "postgres")
        cluster.pg_ctl("start")
        yield cluster
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):  # not started: nothing to stop
            cluster.pg_ctl("-m", "immediate", "stop")
        shutil.rmtree(workdir, ignore_errors=True)


@contextmanager
def fresh_database(admin_url: str, prefix: str = "mlp_test"):
    """A new, empty database on the server; dropped afterwards. Yields its URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield admin_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
