"""Preprocessing per model family: native categories for boosted trees, one-hot and scaling for
linear models, neighbours and neural nets; free text as a text model's out-of-fold predictions
and latent topics for all of them (``features/text.py``). Identifiers are not features."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from mlre.data.contract import DataContract
from mlre.data.roles import Role
from mlre.features.text import TextFeatures
from mlre.features.transformers import (
    CategoryEncoder,
    ColumnCoercer,
    ColumnStack,
    DatetimeFeatures,
)

#: trees: numbers as they are, categories as pandas categoricals (boosted trees, forests);
#: dense: standardised numbers and one-hot categories (linear models, k-NN, MLP);
#: plain: numbers as they are (median-imputed) and one-hot categories, for models people read
#: (a shallow tree's thresholds stay in the column's own units).
Style = Literal["trees", "dense", "plain"]


@dataclass
class FeaturePlan:
    """Which contract columns feed a model, grouped by how they are prepared."""

    numeric: list[str] = field(default_factory=list)
    boolean: list[str] = field(default_factory=list)
    datetime: list[str] = field(default_factory=list)
    categorical: list[str] = field(default_factory=list)
    text: list[str] = field(default_factory=list)
    ignored: dict[str, str] = field(default_factory=dict)
    # the country (and region) whose public holidays the date columns are read against
    country: str | None = None
    subdivision: str | None = None

    @classmethod
    def from_contract(
        cls,
        contract: DataContract,
        exclude: list[str] | tuple[str, ...] = (),
        dates: list[str] | tuple[str, ...] = (),
    ) -> FeaturePlan:
        """Features by role; identifiers, free text, constants and excluded columns are left out.
        ``dates``: columns read as dates whatever their detected role (the time column)."""
        plan = cls()
        for col in contract.features:
            if col.name in exclude:
                plan.ignored[col.name] = "excluded by the spec"
            elif col.name in dates:
                plan.datetime.append(col.name)
            elif col.role is Role.IDENTIFIER:
                plan.ignored[col.name] = "identifier"
            elif col.role is Role.TEXT:
                plan.text.append(col.name)
            elif col.role is Role.NUMERIC:
                plan.numeric.append(col.name)
            elif col.role is Role.BOOLEAN:
                plan.boolean.append(col.name)
            elif col.role is Role.DATETIME:
                plan.datetime.append(col.name)
            else:
                plan.categorical.append(col.name)
        return plan

    @property
    def columns(self) -> list[str]:
        """Every input column the model reads."""
        return [*self.numeric, *self.boolean, *self.datetime, *self.categorical, *self.texts]

    @property
    def texts(self) -> list[str]:
        """The free-text columns (none in plans stored before text was a feature)."""
        return list(self.__dict__.get("text", []))


def make_preprocessor(plan: FeaturePlan, style: Style) -> Pipeline:
    """A fitted-on-demand transformer from a raw table to model inputs (pandas out)."""
    # texts are coerced as categories are (strings, missing NaN), then made features of their own
    coerce = ColumnCoercer(
        plan.numeric, plan.boolean, plan.datetime, [*plan.categorical, *plan.texts]
    )
    plain = [*plan.numeric, *plan.boolean]
    # plans stored before calendars were known have no country
    calendar = plan.__dict__.get("country"), plan.__dict__.get("subdivision")
    parts = []
    if style == "trees":
        if plain:
            parts.append(("num", "passthrough", plain))
        if plan.datetime:
            parts.append(("date", DatetimeFeatures(*calendar), plan.datetime))
        if plan.categorical:
            parts.append(("cat", CategoryEncoder(), plan.categorical))
    else:
        numeric = _dense_numeric if style == "dense" else _plain_numeric
        if plain:
            parts.append(("num", numeric(), plain))
        if plan.datetime:
            dates = make_pipeline(DatetimeFeatures(*calendar), numeric())
            parts.append(("date", dates, plan.datetime))
        if plan.categorical:
            onehot = OneHotEncoder(
                handle_unknown="infrequent_if_exist",
                min_frequency=5,
                max_categories=30,
                sparse_output=False,
            )
            parts.append(
                (
                    "cat",
                    make_pipeline(
                        SimpleImputer(strategy="constant", fill_value="__missing__"), onehot
                    ),
                    plan.categorical,
                )
            )
    if plan.texts:
        parts.append(("text", TextFeatures(), plan.texts))
    columns = ColumnStack(parts)
    return Pipeline([("coerce", coerce), ("columns", columns)]).set_output(transform="pandas")


def _plain_numeric() -> Pipeline:
    return make_pipeline(
        SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True)
    )


def _dense_numeric() -> Pipeline:
    return make_pipeline(
        SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True),
        StandardScaler(),
    )
