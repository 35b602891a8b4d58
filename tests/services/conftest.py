"""Real services for the store tests, each started once per session on 127.0.0.1 and stopped at
the end: PostgreSQL 15 (Debian's `postgresql`) and S3 from Ceph's RADOS Gateway (`ceph-mon
ceph-osd radosgw`; one monitor, one in-memory OSD). `make services` installs the packages. A
service that cannot start fails the tests that need it, with the reason; none is skipped."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

import pytest

import tethered
from conftest import free_port, status, stop_group, wait_for
from tethered import Tethered

#: The S3 user the gateway is given (a throw-away cluster on loopback).
S3_KEY, S3_SECRET = "NNEXPTESTACCESSKEY", "nnexp-test-secret-key"


def command(*args: str, cwd: Path | None = None, what: str) -> str:
    """Run a set-up command; its stdout, or the test fails with ``what`` and the command's own
    last words."""
    try:
        done = subprocess.run(
            args, cwd=cwd, capture_output=True, text=True, timeout=120, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as err:
        pytest.fail(f"{what}: {' '.join(args)}: {err}", pytrace=False)
    if done.returncode != 0:
        said = (done.stderr.strip() or done.stdout.strip()).splitlines()[-3:]
        pytest.fail(f"{what}: {' '.join(args)} exited {done.returncode}: {said}", pytrace=False)
    return done.stdout


@dataclass
class Daemons:
    """Long-running service processes, each tethered to the test process (``tethered.start``: its
    own process group, stopped when the test process ends, by any signal) with its output in a log
    file; stopped in reverse order by their stop signal (SIGKILL after 20 s)."""

    folder: Path
    processes: list[tuple[Tethered, int]] = field(default_factory=list)

    def start(
        self, name: str, *args: str, user: str | None = None, stop_signal: int = signal.SIGTERM
    ) -> Tethered:
        process = tethered.start(
            list(args),
            log=self.folder / f"{name}.out",
            cwd=self.folder,
            user=user,
            stop_signal=stop_signal,
        )
        self.processes.append((process, stop_signal))
        return process

    def alive(self) -> bool:
        return all(process.poll() is None for process, _ in self.processes)

    def stop(self) -> None:
        for process, stop_signal in reversed(self.processes):
            stop_group(process, sig=stop_signal)


def as_postgres(*args: str) -> list[str]:
    """``args`` run as the postgres user when we are root (initdb refuses root)."""
    return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else list(args)


def postgres_bin() -> Path:
    """The newest installed PostgreSQL's bin folder (Debian keeps initdb off the PATH)."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: p.parts[-3])
    if not found:
        pytest.fail("PostgreSQL is not installed: run `make services`", pytrace=False)
    return found[-1].parent


@dataclass(frozen=True)
class Postgres:
    """A PostgreSQL server on 127.0.0.1:port that trusts local connections."""

    bin: Path
    socket_dir: Path
    port: int

    def createdb(self, name: str) -> str:
        """Create database ``name``; its URI."""
        command(
            *as_postgres(str(self.bin / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), name),
            what="createdb failed",
        )
        return self.uri(name)

    def uri(self, name: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{name}"


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    """PostgreSQL, as the runbook: initdb --auth=trust, then the server on a free port, run in the
    foreground (pg_ctl would detach it) and tethered to the test process; stopped by SIGINT,
    PostgreSQL's fast shutdown. Without flushes to disk (``--no-sync``, ``fsync=off``,
    ``synchronous_commit=off``): they guard against a crash of the machine, which no test makes,
    and each of MLflow's ~100 schema migrations would wait for one."""
    bin_dir = postgres_bin()
    folder = Path(tempfile.mkdtemp(prefix="nnexp-postgres-"))
    user = "postgres" if os.geteuid() == 0 else None  # initdb and postgres refuse root
    if user:
        shutil.chown(folder, user)
    server = Postgres(bin_dir, folder, free_port())
    daemons = Daemons(folder)
    try:
        data = folder / "data"
        initdb = [str(bin_dir / "initdb"), "-D", str(data), "--auth=trust", "-U", "postgres"]
        command(
            *as_postgres(*initdb, "--no-sync"),
            what="PostgreSQL could not be initialised",
        )
        process = daemons.start(
            "postgres",
            str(bin_dir / "postgres"),
            "-D", str(data),
            "-p", str(server.port),
            "-k", str(folder),
            "-c", "listen_addresses=127.0.0.1",
            "-c", "fsync=off",
            "-c", "synchronous_commit=off",
            "-c", "full_page_writes=off",
            user=user,
            stop_signal=signal.SIGINT,
        )  # fmt: skip
        ready = [str(bin_dir / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(server.port)]
        wait_for(
            lambda: (
                process.poll() is not None
                or subprocess.run(ready, check=False, timeout=60).returncode == 0
            ),
            timeout=120,
        )
        if process.poll() is not None:
            log = (folder / "postgres.out").read_text(errors="replace")[-600:]
            pytest.fail(f"PostgreSQL did not start: {log}", pytrace=False)
        yield server
    finally:
        daemons.stop()
        shutil.rmtree(folder, ignore_errors=True)


@dataclass(frozen=True)
class S3:
    """An S3 endpoint with one user; ``env`` is what a client (boto3, mlflow) needs."""

    endpoint: str

    @property
    def env(self) -> dict[str, str]:
        return {
            "MLFLOW_S3_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": S3_KEY,
            "AWS_SECRET_ACCESS_KEY": S3_SECRET,
            "AWS_DEFAULT_REGION": "us-east-1",
        }

    def client(self):
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=S3_KEY,
            aws_secret_access_key=S3_SECRET,
            region_name="us-east-1",
        )


def ceph_conf(folder: Path, fsid: str, mon: str, rgw_port: int) -> str:
    """One monitor, one memstore OSD, pools of size 1, no cephx, the gateway on loopback."""
    return f"""[global]
fsid = {fsid}
mon host = {mon}
mon initial members = a
public network = 127.0.0.1/32
auth cluster required = none
auth service required = none
auth client required = none
ms mon client mode = crc secure
osd objectstore = memstore
memstore device bytes = 1073741824
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd crush chooseleaf type = 0
mon allow pool size one = true
mon max pg per osd = 1000
run dir = {folder}/run
admin socket = {folder}/run/$name.asok
log file = {folder}/log/$name.log
pid file = {folder}/run/$name.pid
keyring = {folder}/keyring
[mon.a]
mon data = {folder}/mon
[osd.0]
osd data = {folder}/osd
[client.rgw]
rgw frontends = beast endpoint=127.0.0.1:{rgw_port}
rgw data = {folder}/rgw
"""


def start_ceph(folder: Path, daemons: Daemons) -> S3:
    """Ceph's RADOS Gateway as a real S3 server in ``folder``: monitor, memstore OSD, gateway, one
    user, their processes in ``daemons``."""
    missing = [name for name in ("ceph-mon", "ceph-osd", "radosgw") if not shutil.which(name)]
    if missing:
        pytest.fail(f"Ceph is not installed ({', '.join(missing)}): run `make services`")
    for sub in ("mon", "osd", "run", "log", "rgw"):
        (folder / sub).mkdir()
    fsid, osd_id = str(uuid.uuid4()), str(uuid.uuid4())
    mon = f"[v2:127.0.0.1:{free_port()},v1:127.0.0.1:{free_port()}]"
    rgw_port = free_port()
    conf = folder / "ceph.conf"
    conf.write_text(ceph_conf(folder, fsid, mon, rgw_port))
    ceph = ("-c", str(conf))
    what = "the Ceph monitor could not be created"
    command("ceph-authtool", "--create-keyring", str(folder / "keyring"), "--gen-key",
            "-n", "mon.", "--cap", "mon", "allow *", what=what)  # fmt: skip
    command("monmaptool", "--create", "--addv", "a", mon, "--fsid", fsid,
            str(folder / "monmap"), what=what)  # fmt: skip
    command("ceph-mon", *ceph, "--mkfs", "-i", "a", "--monmap", str(folder / "monmap"),
            what=what)  # fmt: skip
    daemons.start("mon", "ceph-mon", *ceph, "-i", "a", "-f")
    command("ceph", *ceph, "--connect-timeout", "60", "osd", "new", osd_id,
            what="the Ceph monitor did not answer")  # fmt: skip
    command("ceph-osd", *ceph, "-i", "0", "--mkfs", "--osd-uuid", osd_id,
            what="the Ceph OSD could not be created")  # fmt: skip
    daemons.start("osd", "ceph-osd", *ceph, "-i", "0", "-f")
    daemons.start("rgw", "radosgw", *ceph, "-n", "client.rgw", "-f")
    endpoint = f"http://127.0.0.1:{rgw_port}"

    def answers() -> bool:
        try:
            return status(endpoint, timeout=2) == 200
        except OSError:
            return False

    wait_for(lambda: answers() or not daemons.alive(), timeout=300, every=0.5)
    if not daemons.alive():
        logs = {p.name: p.read_text()[-300:] for p in folder.glob("*.out")}
        pytest.fail(f"a Ceph daemon stopped while starting: {logs}", pytrace=False)
    command("radosgw-admin", *ceph, "user", "create", "--uid=nnexp", "--display-name=nnexp",
            f"--access-key={S3_KEY}", f"--secret-key={S3_SECRET}",
            what="the S3 user could not be created")  # fmt: skip
    return S3(endpoint)


@pytest.fixture(scope="session")
def ceph_starting() -> Iterator[Future[S3]]:
    """Ceph's start (``start_ceph``) under way in a thread, so that what is set up meanwhile
    (PostgreSQL) overlaps it: a fixture that needs both asks for this one first. Ceph's daemons
    are stopped at the end of the session."""
    folder = Path(tempfile.mkdtemp(prefix="nnexp-ceph-"))
    daemons = Daemons(folder)
    with ThreadPoolExecutor(max_workers=1) as pool:
        starting = pool.submit(start_ceph, folder, daemons)
        try:
            yield starting
        finally:
            wait([starting])
            daemons.stop()
            shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def s3(ceph_starting) -> S3:
    """Ceph's RADOS Gateway as a real S3 server: monitor, memstore OSD, gateway, one user."""
    return ceph_starting.result()
