"""MLflow around the core: stores, runs, a sweep's parent run, queries, repair and models.
``uri``, ``vocabulary`` and ``sweep_file`` never import mlflow (~3 s); the other submodules do,
so the training path imports them only when tracking is on."""
