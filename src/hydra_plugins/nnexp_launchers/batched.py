"""``hydra/launcher=nnexp`` (nnexp's default): the sweep's jobs run in the launching process with
none of Hydra's per-job set-up (no logging set-up, no chdir); same-shape jobs train as one batched
computation (``nnexp.sweep.batch``). Each job keeps its output folder, its ``.hydra/config.yaml``
and ``overrides.yaml`` (Hydra's settings, the same for every job, are the sweep folder's
``multirun.yaml``: no per-job ``hydra.yaml``), ``hydra.job.num`` and its own child run; the
sweeper gets a JobReturn with each job's objective."""

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from hydra.core.config_store import ConfigStore
from hydra.core.hydra_config import HydraConfig
from hydra.core.utils import JobReturn
from hydra.plugins.launcher import Launcher

from nnexp.sweep.launching import ComposingLauncher

log = logging.getLogger(__name__)


@dataclass
class BatchedLauncherConf:
    """``n_jobs``: worker processes the groups are spread over (1: the launching process)."""

    _target_: str = "hydra_plugins.nnexp_launchers.batched.BatchedLauncher"
    n_jobs: int = 1


ConfigStore.instance().store(
    group="hydra/launcher", name="nnexp", node=BatchedLauncherConf, provider="nnexp"
)


class BatchedLauncher(ComposingLauncher, Launcher):
    """Composes each job (through the sweeper's loader), writes its ``.hydra/`` files, hands the
    jobs to ``nnexp.sweep.batch`` and draws their test costs in one figure on the parent."""

    def __init__(self, n_jobs: int = 1) -> None:
        self.n_jobs = n_jobs

    def launch(
        self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int
    ) -> Sequence[JobReturn]:
        """Run the jobs; one JobReturn per job, in order, its value the job's objective."""
        from nnexp.errors import UserError
        from nnexp.sweep.local import run_jobs

        assert self.config is not None and self.hydra_context is not None
        if self.n_jobs < 1:
            raise UserError(
                f"hydra.launcher.n_jobs={self.n_jobs}: give a number of worker processes >= 1 "
                "(1: the jobs run in this process)"
            )
        Path(str(self.config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
        log.info(f"Launching {len(job_overrides)} jobs in this process, same shapes batched")
        previous = HydraConfig.instance().cfg
        try:
            items = run_jobs(
                self.composed(job_overrides, initial_job_idx), on_end=self.end, workers=self.n_jobs
            )
        finally:
            HydraConfig.instance().cfg = previous
        return [self.job_return(item) for item in items]
