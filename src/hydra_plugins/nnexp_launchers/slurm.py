"""``hydra/launcher=slurm``: Hydra accepts plugins only from the hydra_plugins package, so the
launcher of nnexp.sweep.slurm is named here, with its schema ``nnexp_slurm`` (the submitit
plugin's SLURM settings plus ``batch`` and ``configs_per_task``), which conf/hydra/launcher/
slurm.yaml fills in; without the ``cluster`` extra (submitit) both are absent."""

from dataclasses import dataclass

from hydra.core.config_store import ConfigStore

try:
    from hydra_plugins.hydra_submitit_launcher.config import SlurmQueueConf

    from nnexp.sweep.slurm import SlurmLauncher as _LostJobsLauncher
except ModuleNotFoundError:
    _LostJobsLauncher = None
else:

    class SlurmLauncher(_LostJobsLauncher):
        """nnexp.sweep.slurm.SlurmLauncher, registered with Hydra."""

    @dataclass
    class NnexpSlurmConf(SlurmQueueConf):
        """``batch``: a group of same-shape jobs is one task (false: a task per job, run by
        Hydra); ``configs_per_task``: the most configs one task trains."""

        _target_: str = "hydra_plugins.nnexp_launchers.slurm.SlurmLauncher"
        batch: bool = True
        configs_per_task: int = 500

    ConfigStore.instance().store(
        group="hydra/launcher", name="nnexp_slurm", node=NnexpSlurmConf, provider="nnexp"
    )
