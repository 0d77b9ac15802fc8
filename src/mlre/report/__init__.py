"""Reports: what a run found, for people who must act on it and engineers who must check it."""
