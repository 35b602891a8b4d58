"""``hydra/launcher=slurm``: Hydra accepts plugins only from the hydra_plugins package, so the
launcher of nnexp.sweep.slurm is named here; without the ``cluster`` extra (submitit) it is
absent."""

try:
    from nnexp.sweep.slurm import SlurmLauncher as _LostJobsLauncher
except ModuleNotFoundError:
    _LostJobsLauncher = None
else:

    class SlurmLauncher(_LostJobsLauncher):
        """nnexp.sweep.slurm.SlurmLauncher, registered with Hydra."""
