"""MLflow around the core: stores, runs, sweeps and models. Importing a submodule other than
``uri`` loads mlflow (~3 s), so the training path imports them only when tracking is on."""
