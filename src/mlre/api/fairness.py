"""``mlre fairness``: audit a registered model's predictions for disparities between groups."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from mlre.errors import InputError

if TYPE_CHECKING:
    from mlre.fairness.audit import FairnessAudit
    from mlre.fairness.mitigate import Option
    from mlre.track.registry import RegisteredModel


def fairness(
    model: str,
    data: str | Path | pd.DataFrame,
    *,
    sensitive: list[str],
    target: str | None = None,
    spec: Any = None,
    proxies: bool = True,
    samples: int = 200,
    seed: int = 0,
) -> FairnessAudit:
    """Group metrics (with 95% bootstrap intervals), disparities against the spec's limits (or
    the defaults) and proxy features for model ``model`` on the labelled table ``data``.

    ``sensitive`` columns must be in ``data``; the model need not read them. Binary
    classification and regression are audited; a multiclass model is a clear error."""
    from mlre.data.load import load_table
    from mlre.fairness.audit import audit_predictions, find_proxies, proxy_findings, sensitive_frame
    from mlre.spec import load_spec
    from mlre.track.registry import load_model

    if not sensitive:
        raise InputError("name the sensitive columns to audit", hint="--sensitive sex,race")
    loaded = load_model(model)
    m = loaded.model
    df = data if isinstance(data, pd.DataFrame) else load_table(data).frame
    target = target or m.contract.target
    if target is None or target not in df.columns:
        raise InputError(
            f"the table has no {target!r} column: a fairness audit needs the true outcomes",
            hint="pass a labelled table (for example the run's holdout)",
        )
    df = df[df[target].notna()].reset_index(drop=True)
    groups = sensitive_frame(df, sensitive)
    if m.task == "binary":
        positive = m.classes_[1]
        y = (df[target].astype(str) == str(positive)).to_numpy(dtype=float)
        prediction = (m.predict(df).astype(str) == str(positive)).astype(float)
    elif m.task == "regression":
        y = pd.to_numeric(df[target], errors="coerce").to_numpy(dtype=float)
        prediction = np.asarray(m.predict(df), dtype=float)
    else:
        raise InputError(
            "fairness metrics here cover binary classification and regression; this model is "
            "multiclass",
            hint="audit one class against the rest: retrain with a binary target",
        )
    the_spec = spec if spec is not None and not isinstance(spec, (str, Path)) else load_spec(spec)
    limits = {}
    if the_spec.constraints.fairness is not None:
        c = the_spec.constraints.fairness
        limits[c.metric] = c.max_difference
    audit = audit_predictions(
        y, prediction, groups, task=m.task, limits=limits, samples=samples, seed=seed
    )
    if proxies:
        features = [c.name for c in m.contract.features if c.name in df.columns]
        audit.proxies = find_proxies(df[features], groups, seed=seed)
        audit.findings += proxy_findings(audit.proxies)
    return audit


def mitigate(
    run_id: str,
    *,
    sensitive: str,
    constraint: str = "demographic_parity",
    data: str | Path | pd.DataFrame | None = None,
    reductions: bool = True,
    register: str | None = None,
    track: bool = True,
) -> Mitigation:
    """The trade-off between accuracy and disparity for run ``run_id``'s binary classifier: the
    model as it is, thresholds per group of ``sensitive`` (post-processing) and the run's best
    family refitted under the constraint at several bounds (reductions), all scored on the same
    held-out rows. Returns a ``Mitigation`` with the options and the Pareto front.

    ``register``: the name of an option to register as a new version of the run's model (alias
    ``candidate``); it then serves like any other. One that reads the sensitive column to
    predict says so in its data contract (``sensitive_inputs``)."""
    from mlre.api.inputs import contract_of
    from mlre.api.recorded import run_model_uri
    from mlre.fairness.audit import sensitive_frame
    from mlre.fairness.mitigate import CONSTRAINTS, pareto, tradeoff
    from mlre.search.job import prepare
    from mlre.track.registry import load_model

    if constraint not in CONSTRAINTS:
        raise InputError(
            f"unknown constraint {constraint!r}", hint="use demographic_parity or equalized_odds"
        )
    run, spec, board, inputs = _mitigation_inputs(run_id, sensitive, data)
    if track is False and register is not None:
        raise InputError("registering a mitigated model needs tracking (drop --no-track)")
    contract = contract_of(inputs)
    prepared = prepare(inputs.df, spec, "binary", contract, None)
    uri = run_model_uri(run)
    if uri is None:
        raise InputError(f"run {run_id} registered no model to mitigate")
    model = load_model(uri).model
    groups_train = sensitive_frame(prepared.train, [sensitive], intersections=False)[sensitive]
    groups_hold = sensitive_frame(prepared.hold, [sensitive], intersections=False)[sensitive]
    family, params = _refitted_family(board)
    options = tradeoff(
        model,
        prepared.train[prepared.plan.columns],
        prepared.y_train,
        groups_train.to_numpy(),
        prepared.hold[prepared.plan.columns],
        prepared.y_hold,
        groups_hold.to_numpy(),
        constraint=constraint,
        plan=prepared.plan,
        family=family,
        params=params,
        seed=spec.seed,
        reductions=reductions,
    )
    result = Mitigation(run_id, sensitive, constraint, options, pareto(options))
    if track:
        _record_mitigation(result, register, prepared, contract, spec, run)
    return result


def _mitigation_inputs(
    run_id: str, sensitive: str, data: str | Path | pd.DataFrame | None
) -> tuple[Any, Any, list[dict[str, Any]], Any]:
    """A binary classification run, its spec, its leaderboard and its data, checked to have
    ``sensitive`` as a column of groups."""
    from mlre.api.inputs import load_run_inputs
    from mlre.api.recorded import run_inputs

    run, spec, (board, source) = run_inputs(run_id, data)
    task = run.data.params.get("task")
    if task != "binary":
        raise InputError(
            f"mitigation is offered for binary classification; run {run_id} is {task}",
            hint="for it: audit with `mlre fairness`, keep the sensitive columns out of the "
            "model (--exclude-sensitive) and look at the proxies the audit names",
        )
    inputs = load_run_inputs(source, spec)
    if sensitive not in inputs.df.columns:
        raise InputError(f"sensitive column {sensitive!r} is not in the run's data")
    column = inputs.df[sensitive]
    if pd.api.types.is_numeric_dtype(column.dtype) and column.nunique() > 10:
        raise InputError(
            f"{sensitive!r} is a number with {column.nunique()} values; mitigation needs groups",
            hint="add a column of bands (e.g. age groups) and mitigate for it",
        )
    return run, spec, board, inputs


def _refitted_family(board: list[dict[str, Any]]) -> tuple[str, dict[str, Any]]:
    """The family and parameters refitted under the constraint: the run's best trial when it is
    LightGBM or XGBoost, else LightGBM with its default parameters."""
    from mlre.evaluate.ideas import default_params

    best = next((r for r in board if r.get("status") == "ok"), None)
    family = best["family"] if best and best["family"] in ("lightgbm", "xgboost") else "lightgbm"
    params = best["params"] if best and best["family"] == family else default_params(family)
    return family, params


def _record_mitigation(
    result: Mitigation,
    register: str | None,
    prepared: Any,
    contract: Any,
    spec: Any,
    run: Any,
) -> None:
    """Record the mitigation's options and trade-off figure in MLflow and register the option
    called ``register``, if any."""
    from mlre.fairness.mitigate import tradeoff_figure
    from mlre.track import tracked_run

    with tracked_run(spec.project_name, "mitigate", {"mlre.kind": "mitigate"}) as parent:
        parent.set_tags({"mlre.mitigates": result.run_id, "mlre.sensitive": result.sensitive})
        parent.log_json(result.to_dict(), "fairness/mitigation.json")
        figure = tradeoff_figure(result.options, result.constraint)
        parent.log_json(figure, "fairness/tradeoff_figure.json")
        result.run_id_recorded = parent.run_id
        if register is not None:
            result.registered = _register(parent, result, register, prepared, contract, spec, run)


def write_tradeoff_page(result: Mitigation, path: str | Path) -> Path:
    """Write the trade-off table and plot of ``result`` (what ``mitigate`` returns) to ``path``
    as one self-contained HTML page."""
    from mlre.fairness.mitigate import tradeoff_html

    path = Path(path)
    page = tradeoff_html(result.options, result.front, result.constraint, result.sensitive)
    path.write_text(page, encoding="utf-8")
    return path


class Mitigation:
    """The options of a mitigation and which of them are on the Pareto front."""

    def __init__(
        self, run_id: str, sensitive: str, constraint: str, options: list[Option], front: list[str]
    ) -> None:
        self.run_id, self.sensitive, self.constraint = run_id, sensitive, constraint
        self.options, self.front = options, front
        self.run_id_recorded: str | None = None
        self.registered: RegisteredModel | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "sensitive": self.sensitive,
            "constraint": self.constraint,
            "options": [o.row() | {"pareto": o.name in self.front} for o in self.options],
            "recorded_as": self.run_id_recorded,
            "registered": None
            if self.registered is None
            else self.registered.uri.split("@")[0] + f"/{self.registered.version}",
        }


def _register(
    parent: Any, result: Mitigation, name: str, prepared: Any, contract: Any, spec: Any, run: Any
) -> RegisteredModel:
    """Register the option called ``name`` as a version of the run's model."""
    from mlre.fairness.mitigate import MitigatedModel
    from mlre.track.registry import log_and_register

    option = next((o for o in result.options if o.name == name), None)
    if option is None or option.kind == "unmitigated":
        choices = ", ".join(repr(o.name) for o in result.options if o.kind != "unmitigated")
        raise InputError(f"no mitigated option called {name!r}", hint=f"choose one of {choices}")
    needs = [result.sensitive] if option.needs_sensitive else []
    model = MitigatedModel(
        option.model,
        option.kind,
        result.sensitive,
        prepared.classes,
        contract.model_copy(update={"sensitive_inputs": needs}),
        run.data.params.get("metric", "accuracy"),
    )
    features = [c.name for c in contract.features]
    return log_and_register(
        parent.run_id,
        model,
        prepared.hold[features],
        name=spec.project_name,
        tags={
            "mlre.mitigation": option.name,
            "mlre.mitigates": result.run_id,
            "mlre.sensitive_inputs": ",".join(needs),
        },
    )
