"""Preprocessing pipelines, built per model family from the data contract."""

from mlre.features.pipeline import FeaturePlan, make_preprocessor

__all__ = ["FeaturePlan", "make_preprocessor"]
