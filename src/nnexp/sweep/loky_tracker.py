"""joblib's resource tracker (loky's), started by the launching process of a joblib sweep before
its workers, with SIGHUP and SIGQUIT held: it ignores SIGINT and SIGTERM itself, but a closed
terminal would kill it mid-sweep, and the one joblib starts again in its place prints a traceback
for every resource the launching process then frees."""

from __future__ import annotations

from omegaconf import DictConfig, OmegaConf

from nnexp import private_api
from nnexp.signals import held_for_helpers

JOBLIB_LAUNCHER = "hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher"


def start_for(config: DictConfig) -> None:
    """Start the tracker (once per process) when the sweep's launcher is joblib's."""
    if OmegaConf.select(config, "hydra.launcher._target_") != JOBLIB_LAUNCHER:
        return
    with held_for_helpers():
        private_api.start_loky_resource_tracker()
