"""The ``mlre`` command line: parse, call the API, render with Rich. No logic of its own.

One module per command group (data, model, experiments, fairness, causal, release, monitor),
shared options in ``options``, shared output (errors, findings, progress) in ``output``; ``app``
puts them together.
"""

from mlre.cli.app import app, main

__all__ = ["app", "main"]
