"""Where a result came from: the code's commit, package versions, host, and what decides a run's
bits on this machine."""
