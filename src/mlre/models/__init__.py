"""The model zoo: families, their proven default configurations and their search spaces."""

from mlre.models.zoo import FAMILIES, Family, available_families

__all__ = ["FAMILIES", "Family", "available_families"]
