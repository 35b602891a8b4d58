"""A Ray head started as its own process (``ray start --head --block``) on 127.0.0.1, its state in
a private temp folder, tethered to the test process (stopped when that process ends, by any
signal); stopped by SIGTERM to its process group (never ``ray stop``, which ends every Ray
process on the machine)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

import tethered
from conftest import BIN, clean_env, free_port, stop_group, wait_for
from tethered import Tethered


class RayHead:
    """``start()`` runs the head; ``address`` is what ``hydra.launcher.ray.init.address`` takes."""

    def __init__(self, folder: Path):
        self.folder, self.port = folder, free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.env = clean_env(RAY_USAGE_STATS_ENABLED="0")
        #: The head's own: on SIGTERM it stops its processes at once instead of first draining
        #: the node for up to 30 s (Ray's default, for Ray Serve replicas nnexp does not run).
        self.head_env = {**self.env, "RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S": "0"}
        self.log = folder / "ray-head.log"
        self.process: Tethered | None = None

    def command(self) -> list[str]:
        """The command line of the head (the README shows it)."""
        return [
            str(BIN / "ray"),
            "start",
            "--head",
            "--block",
            f"--port={self.port}",
            "--num-cpus=2",
            "--include-dashboard=false",
            "--disable-usage-stats",
            f"--temp-dir={self.folder / 'tmp'}",
        ]

    def start(self) -> RayHead:
        """Start the head; ready once ``ray status`` lists a node, asked only after the head has
        said "Ray runtime started." (each ``ray status`` costs seconds of CPU that the starting
        head needs). Fails with the head's log if it exits first."""
        self.process = tethered.start(self.command(), log=self.log, env=self.head_env)

        def ready() -> bool:
            if self.process.poll() is not None:
                raise AssertionError(f"ray head exited:\n{self.log.read_text()[-3000:]}")
            if "Ray runtime started." not in self.log.read_text(errors="replace"):
                return False
            status = subprocess.run(
                [str(BIN / "ray"), "status", f"--address={self.address}"],
                env=self.env,
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            return status.returncode == 0 and "node_" in status.stdout

        wait_for(ready, timeout=180, every=1.0)
        return self

    def stop(self) -> None:
        """SIGTERM to the head's process group (its raylet, GCS and workers), SIGKILL after
        20 s (with Ray's drain on, the group's leader outlived SIGTERM by 30 s)."""
        stop_group(self.process)


@pytest.fixture(scope="module")
def ray_head() -> Iterator[RayHead]:
    """The Ray head, started once for the module's tests in a short temp folder (Ray's socket paths
    must stay under 108 characters)."""
    folder = Path(tempfile.mkdtemp(prefix="nnexp-ray-"))
    head = RayHead(folder).start()
    try:
        yield head
    finally:
        head.stop()
        shutil.rmtree(folder, ignore_errors=True)
