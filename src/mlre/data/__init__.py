"""Data intake, column roles, the data contract, profiling and the data audit."""

from mlre.data.load import Table, load_table

__all__ = ["Table", "load_table"]
