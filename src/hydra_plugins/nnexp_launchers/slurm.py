"""``hydra/launcher=slurm``: Hydra accepts plugins only from the hydra_plugins package, so the
launcher of nnexp.launchers is named here; without the ``cluster`` extra (submitit) it is absent."""

try:
    from nnexp.launchers import SlurmLauncher as _LostJobsLauncher
except ModuleNotFoundError:
    _LostJobsLauncher = None
else:

    class SlurmLauncher(_LostJobsLauncher):
        """nnexp.launchers.SlurmLauncher, registered with Hydra."""
