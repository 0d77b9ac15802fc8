"""Model families, their proven default configurations and their search spaces; the fitted
model that is served."""

from mlre.models.families import FAMILIES, Family, available_families

__all__ = ["FAMILIES", "Family", "available_families"]
