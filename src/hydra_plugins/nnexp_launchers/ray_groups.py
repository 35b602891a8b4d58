"""``hydra/launcher=ray``: the launcher of nnexp.sweep.ray_groups named where Hydra looks for
plugins, its config stored as ``ray`` in place of hydra-ray-launcher's (the plugin's ``ray``
settings plus ``batch`` and ``configs_per_task``; a task is not retried: ``max_retries: 0``);
without the ``cluster`` extra (hydra-ray-launcher) both are absent."""

from dataclasses import dataclass, field

from hydra.core.config_store import ConfigStore

try:
    from nnexp.private_api import ray_launcher_schema
    from nnexp.sweep.ray_groups import RayLauncher as _GroupsLauncher
except ModuleNotFoundError:
    _GroupsLauncher = None
else:
    RayLauncherConf, RayConf = ray_launcher_schema()

    class RayLauncher(_GroupsLauncher):
        """nnexp.sweep.ray_groups.RayLauncher, registered with Hydra."""

    @dataclass
    class NnexpRayConf(RayLauncherConf):
        """``batch``: a group of same-shape jobs is one Ray task (false: a task per job, run by
        Hydra); ``configs_per_task``: the most configs one task trains."""

        _target_: str = "hydra_plugins.nnexp_launchers.ray_groups.RayLauncher"
        ray: RayConf = field(default_factory=lambda: RayConf(remote={"max_retries": 0}))
        batch: bool = True
        configs_per_task: int = 500

    # Stored after the plugin's own "ray" (imported above), which it replaces.
    ConfigStore.instance().store(
        group="hydra/launcher", name="ray", node=NnexpRayConf, provider="nnexp"
    )
