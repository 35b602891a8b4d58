"""``nnexp reproduce``: retrain a logged run pinned as it ran, and the verdict."""
