"""Causal effects: the stated model, estimators, diagnostics, refutations, heterogeneous
effects and A/B tests."""
