"""nnexp's sweeper plugin for Hydra (found by Hydra's plugin discovery in ``hydra_plugins``)."""
