"""The config: its typed schema, what Hydra may compose, and Hydra's errors as one line."""
