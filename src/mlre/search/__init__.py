"""The budgeted search: portfolio, then Bayesian tuning, then ensemble selection."""
