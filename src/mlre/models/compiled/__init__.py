"""Fitted pipelines predicted from one float matrix, without pandas in between: the served path.

A served request is a row or a few. Through scikit-learn's pipeline, each bagged LightGBM or
XGBoost model of an ensemble spends ~15 ms on one row turning pandas categoricals into the
booster's input (the booster itself needs 0.1-0.5 ms); an ensemble of eight paid ~150 ms. Here the
table is coerced once for all pipelines, each fold's matrix is built from its own fitted steps
(``matrix``), and the member's predictor predicts the matrix directly. The codes are those the
estimator saw in training, so the predictions are the pipeline's own, to the last bit; tests hold
the two paths equal.

One module per library builds its members' ``RowPredictor``: ``linear`` (scikit-learn's linear
models on a dense-style stack), ``hist_gb`` (HistGradientBoosting), ``forests`` (random forests
and extra trees), ``xgb`` (XGBoost), ``lgbm`` (LightGBM), ``catboost_rows`` (CatBoost) and
``mlp_rows`` (mlre's PyTorch MLP), sharing ``flat_trees`` (trees walked in numpy) and ``matrix``
(column steps on arrays). ``builders.BUILDERS`` picks the module for a fitted estimator. Each
module reads its library's private internals only behind its ``guard``, which logs a warning
naming the library and its version and leaves the member to its pipeline when they are not as
expected. Anything else (other families, other preprocessing) keeps its pipeline.
"""

from mlre.models.compiled.builders import BUILDERS, Builder, builder_for, compile_pipeline
from mlre.models.compiled.catboost_rows import CatRows
from mlre.models.compiled.flat_trees import FlatTrees
from mlre.models.compiled.forests import Forest
from mlre.models.compiled.hist_gb import HistForest, HistGbPredictor
from mlre.models.compiled.lgbm import LgbmPredictor, LgbRow
from mlre.models.compiled.linear import DensePredictor
from mlre.models.compiled.matrix import DatedPart, NumericSteps, OneHotLookup
from mlre.models.compiled.mlp_rows import MlpRows
from mlre.models.compiled.pipeline import CompiledPipeline
from mlre.models.compiled.predictor import FEW_ROWS, SMALL_BATCH, Built, RowPredictor
from mlre.models.compiled.xgb import XgbForest, XgbPredictor

__all__ = [
    "BUILDERS",
    "FEW_ROWS",
    "SMALL_BATCH",
    "Builder",
    "Built",
    "CatRows",
    "CompiledPipeline",
    "DatedPart",
    "DensePredictor",
    "FlatTrees",
    "Forest",
    "HistForest",
    "HistGbPredictor",
    "LgbRow",
    "LgbmPredictor",
    "MlpRows",
    "NumericSteps",
    "OneHotLookup",
    "RowPredictor",
    "XgbForest",
    "XgbPredictor",
    "builder_for",
    "compile_pipeline",
]
