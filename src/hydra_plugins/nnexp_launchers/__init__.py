"""nnexp's Hydra launchers, where Hydra looks for plugins."""
