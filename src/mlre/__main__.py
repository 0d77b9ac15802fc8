"""``python -m mlre``."""

from mlre.cli import main

main()
