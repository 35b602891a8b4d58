"""`nnexp report`: runs read back from the MLflow store → figures → report.md and a
self-contained report.html. Reads the store only, never the training code."""
