"""One run: the job's checked config, the training recipe, its files and its tracker."""
