"""Hydra's submitit SLURM launcher, with every job the cluster loses (cancelled, timed out, killed
for memory, its node lost) recorded as a failed job of the sweep instead of ending the sweep, and
a resumed sweep's finished jobs left out of the submission, and the sweep's jobs cancelled when
a stop signal reaches the launching process. With ``hydra.launcher.batch=true`` (the default) a
group of same-shape jobs (``nnexp.sweep.cluster``) is one task of the job array, trained as one
batched computation on the node; with ``batch=false`` every job is its own task, run by Hydra."""

from __future__ import annotations

import itertools
import logging
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, JobStatus, filter_overrides
from hydra_plugins.hydra_submitit_launcher import submitit_launcher
from omegaconf import DictConfig, OmegaConf, open_dict

from nnexp import console
from nnexp.private_api import submitit_usr_sig
from nnexp.signals import Terminated
from nnexp.sweep.launching import ComposingLauncher
from nnexp.sweep.lifecycle import current_sweep, write_failure
from nnexp.sweep.progress import record_job_end

log = logging.getLogger(__name__)

#: What to change when SLURM ends a job in this state; states not listed are failures as such.
HINTS = {
    "CANCELLED": "cancelled (scancel or an administrator)",
    "TIMEOUT": "over its time limit; raise hydra.launcher.timeout_min",
    "OUT_OF_MEMORY": "out of memory; raise hydra.launcher.mem_gb",
    "NODE_FAIL": "its node failed",
    "PREEMPTED": "preempted",
}
#: States of a job that ended without running to its end: no result will come.
LOST_STATES = (
    "BOOT_FAIL",
    "CANCELLED",
    "DEADLINE",
    "NODE_FAIL",
    "OUT_OF_MEMORY",
    "PREEMPTED",
    "TIMEOUT",
)
#: Seconds between two questions to SLURM's accounting about the jobs still waited for.
POLL_S = 10
#: States in which the job was stopped from outside rather than failing: its run ends KILLED.
KILLED_STATES = ("CANCELLED", "PREEMPTED")


def lost_reason(job_id: str, state: str) -> str:
    """``SLURM job 12_0 ended TIMEOUT: over its time limit; raise hydra.launcher.timeout_min``."""
    word = state.split(maxsplit=1)[0] if state.strip() else "UNKNOWN"
    hint = HINTS.get(
        word, "it ended without a result; see its log in hydra.launcher.submitit_folder"
    )
    return f"SLURM job {job_id} ended {word}: {hint}"


def wait(job: Any) -> None:
    """Until the job has written its result (checked every second) or SLURM's accounting says it
    ended (asked every POLL_S seconds, one sacct call for all the sweep's jobs)."""
    for tick in itertools.count():
        if job.done(force_check=tick % POLL_S == 0):
            return
        time.sleep(1)


def cancel(jobs: Sequence[Any]) -> None:
    """On a stop signal in the launching process: cancel the sweep's jobs still queued or running
    (one ``scancel`` for all), so none starts after it; a running one ends KILLED by SLURM's
    SIGTERM. Finished jobs are left as they are."""
    pending = [job.job_id for job in jobs if not job.done()]
    if pending:
        subprocess.call(["scancel", *pending], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def job_folder(config: DictConfig) -> Path:
    """A sweep job's output folder, from its config as composed for it."""
    return Path(str(config.hydra.sweep.dir)) / str(config.hydra.sweep.subdir)


def ignore_early_warning() -> None:
    """In the job: ignore the signal SLURM sends ahead of the time limit. submitit would requeue
    the job from scratch or raise its own error inside the training; instead the job trains on
    until SLURM ends it, and the launcher records it with SLURM's reason (TIMEOUT, PREEMPTED)."""
    signal.signal(submitit_usr_sig(), signal.SIG_IGN)


def slurm_task(task: list) -> list:
    """On the node: one task of a batched sweep (``nnexp.sweep.cluster.run_task``), SLURM's early
    warning ignored."""
    from nnexp.sweep.cluster import run_task

    ignore_early_warning()
    return run_task(task)


def end_state(job: Any) -> tuple[str, str]:
    """How a task that left no result ended: KILLED or FAILED, and the reason."""
    state = job.state
    word = state.split(maxsplit=1)[0] if state.strip() else "UNKNOWN"
    status = "KILLED" if word in KILLED_STATES else "FAILED"
    return status, lost_reason(job.job_id, state)


class SlurmLauncher(ComposingLauncher, submitit_launcher.SlurmLauncher):
    """``hydra/launcher=slurm``: submits the sweep as one job array (a task per group, or per job
    with ``batch=false``), then collects each task's result; a task that ends without one makes
    its jobs FAILED (KILLED if cancelled) jobs of the sweep with SLURM's reason, and the sweeper
    gets ``sweep.failed_objective`` for them."""

    def __init__(self, batch: bool = True, configs_per_task: int = 500, **params: Any) -> None:
        super().__init__(**params)
        self.batch, self.configs_per_task = batch, configs_per_task

    def __call__(self, *args: Any, **kwargs: Any) -> JobReturn:
        """In the job: run it as the plugin does, SLURM's early warning ignored."""
        ignore_early_warning()
        return super().__call__(*args, **kwargs)

    def launch(
        self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int
    ) -> Sequence[JobReturn]:
        """The sweep's jobs as tasks of one job array, their results collected one by one."""
        if self.batch:
            return self._launch_groups(job_overrides, initial_job_idx)
        return self._launch_jobs(job_overrides, initial_job_idx)

    def _launch_groups(
        self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int
    ) -> Sequence[JobReturn]:
        """Compose and check every job here, group them, submit one task per group (cut to
        ``configs_per_task`` and to the task's ``mem_gb``), collect each task's results."""
        from nnexp.sweep import cluster
        from nnexp.sweep.batch import Trackers, draw_curves

        cluster.check_configs_per_task(self.configs_per_task, "SLURM")
        trackers = Trackers()
        items = self.checked_jobs(job_overrides, initial_job_idx, trackers)
        ready = [item for item in items if item.objective is None]
        mem_gb = self.params.get("mem_gb")
        memory = int(mem_gb * 2**30) if mem_gb else None
        tasks = cluster.plan_tasks(ready, self.configs_per_task, memory)
        if tasks:
            log.info(
                f"Submitting {len(ready)} jobs as {len(tasks)} SLURM tasks "
                f"(same shapes batched, at most {self.configs_per_task} a task)"
            )
            executor = self._executor()
            with executor.batch():
                jobs = [executor.submit(slurm_task, task) for task in tasks]
            try:
                for job, task in zip(jobs, tasks, strict=True):
                    self._collect_task(job, task)
            except (KeyboardInterrupt, Terminated):
                cancel(jobs)
                raise
        draw_curves(items, trackers)
        return [self.job_return(item) for item in items]

    def _collect_task(self, job: Any, task: list) -> None:
        """A task's results into its jobs, or for a task the cluster lost (or that failed), each
        of its jobs recorded lost with the reason."""
        from submitit.core.utils import FailedJobError, UncompletedJobError

        from nnexp.sweep import cluster

        wait(job)
        try:
            results = job.results()[0]
        except (UncompletedJobError, FailedJobError):
            cluster.record_lost(task, *end_state(job), self.end)
            return
        cluster.take_results(task, results, self.end)

    def _executor(self) -> Any:
        """A submitit executor with the launcher's parameters."""
        import submitit

        executor = submitit.AutoExecutor(
            cluster="slurm",
            folder=self.params["submitit_folder"],
            slurm_max_num_timeout=self.params["max_num_timeout"],
        )
        base = set(OmegaConf.structured(submitit_launcher.BaseQueueConf).keys())
        executor.update_parameters(
            **{
                key if key in base else f"slurm_{key}": value
                for key, value in self.params.items()
                if key not in ("submitit_folder", "max_num_timeout")
            }
        )
        return executor

    def _launch_jobs(
        self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int
    ) -> Sequence[JobReturn]:
        """Submit every job as its own task as the plugin does, collect their results."""
        executor = self._executor()
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        numbered = [
            (list(overrides), initial_job_idx + idx) for idx, overrides in enumerate(job_overrides)
        ]
        for overrides, num in numbered:
            log.info(f"\t#{num} : {' '.join(filter_overrides(overrides))}")
        results = self._already_finished(numbered, sweep_dir)
        to_submit = [(o, n) for o, n in numbered if n not in results]
        if to_submit:
            jobs = executor.map_array(
                self,
                *zip(
                    *[
                        (o, "hydra.sweep.dir", n, f"job_id_for_{n}", Singleton.get_state())
                        for o, n in to_submit
                    ],
                    strict=True,
                ),
            )
            try:
                for job, (overrides, num) in zip(jobs, to_submit, strict=True):
                    results[num] = self._collect(job, overrides, num)
            except (KeyboardInterrupt, Terminated):
                cancel(jobs)
                raise
        return [results[num] for _, num in numbered]

    def _already_finished(
        self, numbered: list[tuple[list[str], int]], sweep_dir: Path
    ) -> dict[int, JobReturn]:
        """With ``sweep.resume=true`` in a tracked sweep: the jobs with a FINISHED run of the same
        config, data and code, each returned as its job would return it, so that the cluster is
        not asked to start them only for them to skip themselves."""
        sweep = current_sweep()
        if not self.config.sweep.resume or sweep is None or sweep.info is None:
            return {}
        from nnexp.sweep.jobs import finished_sweep_jobs

        configs = [self._job_config(overrides, num) for overrides, num in numbered]
        outcomes = finished_sweep_jobs([(config, job_folder(config)) for config in configs])
        skipped = {}
        for (overrides, num), done in zip(numbered, outcomes, strict=True):
            if done is not None:
                console.info(
                    f"skipped job {num} ({' '.join(overrides)}): "
                    f"run {done.run_id} already FINISHED with this config"
                )
                record_job_end(sweep_dir, num, overrides, "finished", done.objective)
                skipped[num] = JobReturn(
                    overrides=overrides, status=JobStatus.COMPLETED, _return_value=done.objective
                )
        return skipped

    def _collect(self, job: Any, overrides: list[str], num: int) -> JobReturn:
        """The job's result, or for a job the cluster lost, a failed one recorded as such."""
        from submitit.core.utils import UncompletedJobError

        wait(job)
        state = job.state
        try:
            if job.paths.result_pickle.exists() or state.split(maxsplit=1)[0] not in LOST_STATES:
                return job.results()[0]
        except UncompletedJobError:
            pass
        self._record_lost(overrides, num, state, lost_reason(job.job_id, state))
        return JobReturn(
            overrides=overrides,
            status=JobStatus.COMPLETED,
            _return_value=float(self.config.sweep.failed_objective),
        )

    def _record_lost(self, overrides: list[str], num: int, state: str, reason: str) -> None:
        """One line for the user, the failure marker in the job's folder, and its child run."""
        console.error(f"job {num} ({' '.join(overrides)}) lost: {reason}")
        config = self._job_config(overrides, num)
        output_dir = job_folder(config)
        output_dir.mkdir(parents=True, exist_ok=True)
        write_failure(output_dir, overrides, reason)
        sweep = current_sweep()
        if sweep is not None and sweep.info is not None:
            from nnexp.sweep.jobs import record_lost_sweep_job

            status = "KILLED" if state.startswith(KILLED_STATES) else "FAILED"
            record_lost_sweep_job(config, output_dir, status, reason)

    def _job_config(self, overrides: list[str], num: int) -> DictConfig:
        """The job's config as the job itself composes it."""
        config = self.hydra_context.config_loader.load_sweep_config(self.config, overrides)
        with open_dict(config.hydra.job):
            config.hydra.job.num = num
            config.hydra.job.id = f"job_id_for_{num}"
        return config
