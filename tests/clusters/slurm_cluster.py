"""A real single-node SLURM 22.05 cluster with accounting, all on 127.0.0.1, its state in one
folder: munged on a private socket and key, MariaDB on its own folder, socket and port, slurmdbd,
slurmctld and slurmd. Client commands find it through ``SLURM_CONF``."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import tethered
from conftest import free_port, stop_group, wait_for

CLUSTER = "nnexp"
#: The daemons and clients the cluster needs (Debian: slurm-wlm slurmdbd munge mariadb-server).
PROGRAMS = ("munged", "mariadbd", "mariadb-install-db", "slurmdbd", "slurmctld", "slurmd", "sacct")


class ServiceFailed(AssertionError):
    """A daemon of the cluster did not start; the message holds the end of its log."""


class Daemon:
    """One daemon in the foreground, tethered to the test process (its own process group, stopped
    when the test process ends, by any signal), its output in ``log``."""

    def __init__(self, name: str, argv: list[str], log: Path, env: dict[str, str]):
        self.name, self.log = name, log
        self.process = tethered.start(argv, log=log, env=env)

    def check(self) -> None:
        """Raise with the end of the log if the daemon has exited."""
        if self.process.poll() is not None:
            tail = "\n".join(self.log.read_text(errors="replace").splitlines()[-15:])
            raise ServiceFailed(f"{self.name} exited ({self.process.returncode}):\n{tail}")

    def stop(self) -> None:
        """SIGTERM to its process group; SIGKILL if it has not gone within 20 s."""
        stop_group(self.process)


class SlurmCluster:
    """``start()`` brings the cluster up in ``folder``; ``env`` is what a client needs."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.conf = folder / "slurm.conf"
        self.munge_socket = folder / "munge" / "munge.socket"
        self.daemons: list[Daemon] = []
        self.env = {**os.environ, "SLURM_CONF": str(self.conf)}

    def start(self) -> SlurmCluster:
        """munged → MariaDB → slurmdbd (+ the cluster's account record) → slurmctld → slurmd,
        each checked before the next starts; raise ServiceFailed naming the one that did not."""
        missing = [program for program in PROGRAMS if shutil.which(program) is None]
        if missing:
            raise ServiceFailed(
                f"SLURM is not installed ({', '.join(missing)} missing): run `make slurm`"
            )
        try:
            self._munge()
            self._mariadb()
            self._slurmdbd()
            self._slurmctld_and_slurmd()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Cancel what is left in the queue, then stop the daemons in reverse order."""
        if any(d.name == "slurmctld" and d.process.poll() is None for d in self.daemons):
            self.run("scancel", "--full", f"--clusters={CLUSTER}", "--user=root", check=False)
        for daemon in reversed(self.daemons):
            daemon.stop()
        self.daemons.clear()

    def run(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess:
        """A SLURM client command against this cluster."""
        done = subprocess.run(
            argv, env=self.env, capture_output=True, text=True, timeout=60, check=False
        )
        if check and done.returncode != 0:
            raise ServiceFailed(f"{' '.join(argv)} failed: {done.stderr.strip()}")
        return done

    def _daemon(self, name: str, *argv: str) -> Daemon:
        daemon = Daemon(name, list(argv), self.folder / f"{name}.log", self.env)
        self.daemons.append(daemon)
        return daemon

    def _ready(self, daemon: Daemon, probe) -> None:
        def ready() -> bool:
            daemon.check()
            return bool(probe())

        wait_for(ready, timeout=60, every=0.1)

    def _munge(self) -> None:
        folder = self.folder / "munge"
        folder.mkdir(mode=0o755)
        folder.chmod(0o755)
        key = folder / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o600)
        daemon = self._daemon(
            "munged",
            "munged",
            "--foreground",
            "--force",
            f"--socket={self.munge_socket}",
            f"--key-file={key}",
            f"--pid-file={folder / 'munged.pid'}",
            f"--seed-file={folder / 'munged.seed'}",
            f"--log-file={folder / 'munged.log'}",
        )
        self._ready(daemon, self.munge_socket.exists)

    def _mariadb(self) -> None:
        data = self.folder / "mariadb"
        self.db_socket, self.db_port = self.folder / "mariadb.sock", free_port()
        install = subprocess.run(
            [
                "mariadb-install-db",
                "--no-defaults",
                f"--datadir={data}",
                "--user=root",
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if install.returncode != 0:
            raise ServiceFailed(f"mariadb-install-db failed: {install.stdout}{install.stderr}")
        daemon = self._daemon(
            "mariadbd",
            "mariadbd",
            "--no-defaults",
            f"--datadir={data}",
            f"--socket={self.db_socket}",
            f"--port={self.db_port}",
            "--bind-address=127.0.0.1",
            "--user=root",
            f"--pid-file={self.folder / 'mariadb.pid'}",
            "--innodb-buffer-pool-size=32M",
        )
        self._ready(daemon, self.db_socket.exists)

    def _slurmdbd(self) -> None:
        self.dbd_port = free_port()
        conf = self.folder / "slurmdbd.conf"
        conf.write_text(
            "\n".join(
                [
                    "AuthType=auth/munge",
                    f"AuthInfo=socket={self.munge_socket}",
                    "DbdHost=localhost",
                    "DbdAddr=127.0.0.1",
                    f"DbdPort={self.dbd_port}",
                    "SlurmUser=root",
                    f"PidFile={self.folder / 'slurmdbd.pid'}",
                    f"LogFile={self.folder / 'slurmdbd.daemon.log'}",
                    "StorageType=accounting_storage/mysql",
                    "StorageHost=127.0.0.1",
                    f"StoragePort={self.db_port}",
                    "StorageUser=root",
                    "StorageLoc=slurm_acct_db",
                    "",
                ]
            )
        )
        conf.chmod(0o600)
        self._write_slurm_conf()
        daemon = self._daemon("slurmdbd", "slurmdbd", "-D")  # reads slurmdbd.conf beside SLURM_CONF

        def registered() -> bool:
            added = self.run("sacctmgr", "-i", "add", "cluster", CLUSTER, check=False)
            return added.returncode == 0 or "already exists" in added.stdout + added.stderr

        self._ready(daemon, registered)

    def _write_slurm_conf(self) -> None:
        state, spool = self.folder / "state", self.folder / "spool"
        state.mkdir()
        spool.mkdir()
        ctld_port, slurmd_port = free_port(), free_port()
        self.conf.write_text(
            "\n".join(
                [
                    f"ClusterName={CLUSTER}",
                    "SlurmctldHost=localhost(127.0.0.1)",
                    f"SlurmctldPort={ctld_port}",
                    f"SlurmdPort={slurmd_port}",
                    "SlurmUser=root",
                    "SlurmdUser=root",
                    "AuthType=auth/munge",
                    f"AuthInfo=socket={self.munge_socket}",
                    f"StateSaveLocation={state}",
                    f"SlurmdSpoolDir={spool}",
                    f"SlurmctldPidFile={self.folder / 'slurmctld.pid'}",
                    f"SlurmdPidFile={self.folder / 'slurmd.pid'}",
                    f"SlurmctldLogFile={self.folder / 'slurmctld.daemon.log'}",
                    f"SlurmdLogFile={self.folder / 'slurmd.daemon.log'}",
                    "ProctrackType=proctrack/linuxproc",
                    "TaskPlugin=task/none",
                    "SelectType=select/cons_tres",
                    "SelectTypeParameters=CR_Core_Memory",
                    "JobAcctGatherType=jobacct_gather/none",
                    "MpiDefault=none",
                    "SwitchType=switch/none",
                    "ReturnToService=2",
                    "KillWait=2",
                    "AccountingStorageType=accounting_storage/slurmdbd",
                    "AccountingStorageHost=localhost",
                    f"AccountingStoragePort={self.dbd_port}",
                    f"AccountingStoragePass={self.munge_socket}",
                    # Three CPUs on a machine that may have two (config_overrides, SLURM's
                    # setting for tests): a 3-job sweep runs at once, resume's skipped job too.
                    "SlurmdParameters=config_overrides",
                    "NodeName=localhost NodeAddr=127.0.0.1 CPUs=3 RealMemory=12288 State=UNKNOWN",
                    "PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP",
                    "",
                ]
            )
        )

    def _slurmctld_and_slurmd(self) -> None:
        ctld = self._daemon("slurmctld", "slurmctld", "-D", "-i", "-f", str(self.conf))
        self._ready(ctld, lambda: self.run("scontrol", "ping", check=False).returncode == 0)
        slurmd = self._daemon("slurmd", "slurmd", "-D", "-N", "localhost", "-f", str(self.conf))

        def idle() -> bool:
            state = self.run("sinfo", "-h", "-N", "-o", "%T", check=False).stdout.strip()
            return state == "idle"

        self._ready(slurmd, idle)

    def job_state(self, job_id: str) -> str:
        """The job's state as accounting records it (e.g. RUNNING, CANCELLED, TIMEOUT)."""
        out = self.run("sacct", "-n", "-X", "-P", "-o", "State", "-j", job_id).stdout
        return out.split()[0] if out.split() else ""


def started(folder: Path) -> SlurmCluster:
    """A started cluster, timing its start for the log."""
    began = time.monotonic()
    cluster = SlurmCluster(folder).start()
    print(f"SLURM up in {time.monotonic() - began:.1f} s in {folder}")
    return cluster


@pytest.fixture(scope="module")
def slurm(tmp_path_factory) -> Iterator[SlurmCluster]:
    """The cluster, started once for the module's tests; its start fails the tests that use it with
    the daemon's reason (SLURM not installed, a daemon that exits)."""
    cluster = started(tmp_path_factory.mktemp("slurm"))
    try:
        yield cluster
    finally:
        cluster.stop()
