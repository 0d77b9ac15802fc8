"""The objective spec: what to predict, how it is judged, and within which limits.

It lives in ``mlre.yaml`` (written by ``mlre init``); CLI flags override its keys.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any, Literal, get_args

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from mlre.errors import SpecError, did_you_mean

Task = Literal["binary", "multiclass", "regression"]
#: Every task, in the order the spec's description names them.
TASKS: tuple[Task, ...] = get_args(Task)

#: Every metric mlre knows, with the tasks it fits and whether larger is better.
METRICS: dict[str, tuple[frozenset[str], bool]] = {
    "roc_auc": (frozenset({"binary", "multiclass"}), True),
    "log_loss": (frozenset({"binary", "multiclass"}), False),
    "accuracy": (frozenset({"binary", "multiclass"}), True),
    "balanced_accuracy": (frozenset({"binary", "multiclass"}), True),
    "f1": (frozenset({"binary", "multiclass"}), True),
    "rmse": (frozenset({"regression"}), False),
    "mae": (frozenset({"regression"}), False),
    "r2": (frozenset({"regression"}), True),
    "mape": (frozenset({"regression"}), False),
}

DEFAULT_METRIC: dict[Task, str] = {
    "binary": "roc_auc",
    "multiclass": "log_loss",
    "regression": "rmse",
}

SPEC_FILE = "mlre.yaml"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class FairnessConstraint(_Strict):
    """A bound on the disparity between groups of a sensitive column."""

    metric: str = Field(
        "demographic_parity_difference",
        description="demographic_parity_difference, equalized_odds_difference, "
        "equal_opportunity_difference or demographic_parity_ratio",
    )
    max_difference: float = Field(0.1, ge=0, le=1, description="the largest disparity allowed")

    @field_validator("metric")
    @classmethod
    def _known(cls, v: str) -> str:
        known = (
            "demographic_parity_difference",
            "equalized_odds_difference",
            "equal_opportunity_difference",
            "demographic_parity_ratio",
        )
        if v not in known:
            hint = did_you_mean(v, known) or "known: " + ", ".join(known)
            raise ValueError(f"unknown fairness metric {v!r}; {hint}")
        return v


class Constraints(_Strict):
    """Limits the chosen model must respect; enforced by the search and the release gates."""

    interpretable: bool = Field(
        False, description="glass-box models only: sparse linear, shallow tree, EBM"
    )
    fairness: FairnessConstraint | None = Field(
        None,
        description="a fairness gate, e.g. {metric: demographic_parity_difference, "
        "max_difference: 0.1}",
    )
    max_latency_ms: float | None = Field(
        None,
        gt=0,
        description="the served model's median milliseconds for one row (the compiled path, "
        "measured on holdout rows): the ensemble keeps only members that fit; a run where no "
        "candidate fits fails naming the fastest",
    )
    max_model_mb: float | None = Field(
        None,
        gt=0,
        description="the served model's size in MB (pickled): the ensemble keeps only members "
        "that fit; a run where no candidate fits fails naming the smallest",
    )


class Calendar(_Strict):
    """What dates mean where the data comes from."""

    country: str | None = Field(
        None,
        description="ISO country code (US, GB, DE, ...): date features gain that country's "
        "public holidays",
    )
    subdivision: str | None = Field(
        None, description="a state or region of the country (e.g. CA), for its own holidays"
    )

    @model_validator(mode="after")
    def _known_country(self) -> Calendar:
        if self.country is None:
            if self.subdivision is not None:
                raise ValueError("calendar.subdivision needs calendar.country")
            return self
        import holidays

        supported = holidays.list_supported_countries()
        code = self.country.upper()
        if code not in supported:
            hint = did_you_mean(code, supported) or "use an ISO 3166 code such as US, GB or DE"
            raise ValueError(f"no public holidays are known for country {self.country!r}; {hint}")
        self.__dict__["country"] = code
        if self.subdivision is not None and self.subdivision not in supported[code]:
            raise ValueError(
                f"{code} has no subdivision {self.subdivision!r}; known: "
                + ", ".join(supported[code][:30])
            )
        return self


class RollbackPolicy(_Strict):
    """When a service demotes a challenger by itself, judged over a sliding window."""

    window_seconds: float = Field(300.0, gt=0, description="the sliding window")
    min_requests: int = Field(
        50, ge=1, description="challenger requests in the window before any verdict"
    )
    max_error_rate: float = Field(0.05, ge=0, le=1, description="challenger errors per request")
    max_latency_ratio: float = Field(
        3.0, gt=1, description="challenger p99 latency over the champion's p99"
    )
    latency_floor_ms: float = Field(
        20.0, ge=0, description="p99 latencies below this are never a reason to roll back"
    )
    max_p99_ms: float | None = Field(
        None, gt=0, description="an absolute bound on p99 latency, if you have one"
    )
    max_disagreement: float = Field(
        0.3, ge=0, le=1, description="share of shadowed requests answered differently"
    )
    regression_tolerance: float = Field(
        0.5, gt=0, description="regression answers differ beyond this many champion std devs"
    )
    max_prediction_shift: float = Field(
        0.25,
        ge=0,
        le=1,
        description="a canary's answers against the champion's: label total variation distance "
        "or Kolmogorov-Smirnov distance of values",
    )


class DeployPolicy(_Strict):
    """How releases are judged: automatic rollback, and the gate for a full promotion."""

    rollback: RollbackPolicy = Field(
        default_factory=RollbackPolicy,
        description="when the service rolls a challenger back by itself",
    )
    gate_margin: float = Field(
        0.005, ge=0, description="how much worse than the champion's holdout score is tolerated"
    )
    request_timeout_ms: float = Field(
        5_000.0,
        gt=0,
        description="a prediction not answered within this is a timeout: the champion's a 503 "
        "with Retry-After, the canary's answered by the champion; both count as errors",
    )
    max_queue_mb: float = Field(
        64.0,
        gt=0,
        description="request bytes waiting for a model at most (each queue: batch, shadow, "
        "prediction log); beyond it requests are shed with a 503, never held in memory",
    )
    client_rate: float | None = Field(
        200.0,
        gt=0,
        description="work a second each client may ask of the service (a client: its valid API "
        "key's name, else its address): a request is one unit plus one per 16 KiB of body, and "
        "one refused as malformed (4xx) costs 5 more; beyond its burst a client gets 429 with "
        "Retry-After before its body is read. null: no limit",
    )
    client_burst: float = Field(
        400.0, gt=0, description="units a client may spend at once before client_rate applies"
    )


class MonitorPolicy(_Strict):
    """When ``mlre monitor`` calls drift and raises an alert."""

    drift_share: float = Field(
        0.5, gt=0, le=1, description="share of drifted columns that alerts for the data set"
    )
    p_value: float = Field(
        0.05, gt=0, lt=1, description="test level on references of up to 1,000 rows"
    )
    distance: float = Field(
        0.1,
        gt=0,
        description="Wasserstein (in reference SDs) or Jensen-Shannon distance on larger ones",
    )
    webhook: str | None = Field(None, description="POST the alert's JSON document here")


class Spec(_Strict):
    """The objective contract of a project."""

    project: str | None = Field(
        None,
        description="Name for the MLflow experiment and the registered model (default: the "
        "target's name).",
    )
    target: str | None = Field(None, description="The column to predict.")
    task: Task | None = Field(
        None, description="binary | multiclass | regression. Detected from the target when empty."
    )
    metric: str | None = Field(
        None,
        description='What "better" means. Classification: roc_auc, log_loss, accuracy, '
        "balanced_accuracy, f1. Regression: rmse, mae, r2, mape. Default: roc_auc (binary), "
        "log_loss (multiclass), rmse.",
    )
    time_budget: float = Field(
        300.0,
        gt=0,
        le=7 * 24 * 3600,
        description="Wall-clock seconds for a whole `mlre run`, audit to registered model.",
    )
    seed: int = Field(
        0, ge=0, description="Drives every split, search and model, so a run can be replayed."
    )
    holdout: float = Field(
        0.2,
        gt=0,
        lt=0.9,
        description="Fraction of rows kept aside, never seen by the search, for the honest score.",
    )
    refit: bool = Field(
        True,
        description="Once the holdout has scored the chosen recipe, fit it again on every "
        "labelled row (training and holdout together) and register that model; false "
        "registers the scored model.",
    )
    id_columns: list[str] = Field(
        default_factory=list, description="Columns that identify a row (never used as features)."
    )
    time_column: str | None = Field(
        None,
        description="Rows are events in time: every split goes forward (the holdout is the "
        "latest rows, the search validates each block on the rows before it) and the column "
        "becomes calendar features.",
    )
    gap: int = Field(
        0,
        ge=0,
        description="With a time column: rows left out between each training window and the "
        "rows validated after it (labels that arrive late).",
    )
    calendar: Calendar = Field(
        default_factory=Calendar, description="What dates mean: the country of public holidays."
    )
    group_column: str | None = Field(
        None,
        description="A group column keeps all rows of a group on the same side of every split.",
    )
    sensitive: list[str] = Field(
        default_factory=list,
        description="Protected attributes: every model is audited for disparities between "
        "their groups.",
    )
    exclude_sensitive: bool = Field(
        False,
        description="Keep the sensitive columns out of the model (they are still audited).",
    )
    drop: list[str] = Field(default_factory=list, description="Columns to ignore entirely.")
    roles: dict[str, Literal["text", "category", "id", "ignore"]] = Field(
        default_factory=dict,
        description="What a column is, where the guess is wrong: text (free text, made n-gram "
        "features), category, id (never a feature) or ignore (left out entirely).",
    )
    na_values: list[str] = Field(
        default_factory=list,
        description='Extra text tokens to read as missing values, for example "?" or "unknown".',
    )
    constraints: Constraints = Field(
        default_factory=Constraints, description="Limits the chosen model must respect."
    )
    deploy: DeployPolicy = Field(
        default_factory=DeployPolicy,
        description="Releases (`mlre serve`, `mlre promote`): when the service rolls a "
        "challenger back by itself, over a sliding window, and how much worse than the "
        "champion's holdout score a full promotion may be.",
    )
    monitor: MonitorPolicy = Field(
        default_factory=MonitorPolicy,
        description="Monitoring (`mlre monitor`): when a column counts as drifted, when the data "
        "set does, and where alerts are posted.",
    )

    @model_validator(mode="before")
    @classmethod
    def _interpretable_shorthand(cls, values: Any) -> Any:
        # `interpretable: true` at the top level is the same as under constraints
        if isinstance(values, dict) and "interpretable" in values:
            values = dict(values)
            flag = values.pop("interpretable")
            if flag is not None:
                constraints = values.get("constraints")
                constraints = dict(constraints) if isinstance(constraints, dict) else {}
                constraints["interpretable"] = flag
                values["constraints"] = constraints
        return values

    @field_validator("metric")
    @classmethod
    def _known_metric(cls, v: str | None) -> str | None:
        if v is None:
            return v
        v = v.lower()
        if v not in METRICS:
            hint = did_you_mean(v, METRICS) or "known metrics: " + ", ".join(METRICS)
            raise ValueError(f"unknown metric {v!r}; {hint}")
        return v

    @model_validator(mode="after")
    def _metric_fits_task(self) -> Spec:
        if self.metric and self.task:
            check_metric_fits(self.metric, self.task)
        return self

    @model_validator(mode="after")
    def _gap_needs_time(self) -> Spec:
        if self.gap and self.time_column is None:
            raise ValueError("gap skips rows between past and future: it needs time_column")
        return self

    @property
    def project_name(self) -> str:
        """The project's name: given, or derived from the target."""
        return self.project or (self.target or "mlre")

    def resolved_metric(self, task: Task) -> str:
        """The metric to optimise for ``task``: the spec's, or the task's default."""
        metric = self.metric or DEFAULT_METRIC[task]
        check_metric_fits(metric, task)
        return metric


def as_task(name: str) -> Task:
    """``name`` (a task as text, e.g. recorded with a run) as a Task; a SpecError when it names
    none."""
    for task in TASKS:
        if name == task:
            return task
    raise SpecError(f"unknown task {name!r}", hint="the tasks are " + ", ".join(TASKS))


def check_metric_fits(metric: str, task: Task) -> None:
    """Raise a SpecError when ``metric`` cannot judge ``task``."""
    tasks, _ = METRICS[metric]
    if task not in tasks:
        fitting = [m for m, (t, _) in METRICS.items() if task in t]
        raise SpecError(
            f"metric {metric!r} does not fit a {task} task",
            hint="use one of " + ", ".join(fitting),
        )


def _field_names(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """The valid keys at the nesting level named by ``loc`` (for suggestions)."""
    current: type[BaseModel] = model
    for part in loc[:-1]:
        field = current.model_fields.get(str(part))
        ann = getattr(field, "annotation", None)
        for candidate in getattr(ann, "__args__", (ann,)):
            if isinstance(candidate, type) and issubclass(candidate, BaseModel):
                current = candidate
                break
        else:
            return []
    return list(current.model_fields)


def _explain(err: ValidationError, source: str) -> SpecError:
    first = err.errors()[0]
    loc = tuple(first["loc"])
    where = ".".join(str(p) for p in loc) or "spec"
    if first["type"] == "extra_forbidden":
        key = str(loc[-1])
        hint = did_you_mean(key, _field_names(Spec, loc)) or (
            "valid keys: " + ", ".join(_field_names(Spec, loc))
        )
        return SpecError(f"unknown key {where!r} in {source}", hint=hint)
    msg = first["msg"].removeprefix("Value error, ")
    return SpecError(f"invalid value for {where!r} in {source}: {msg}", hint="see `mlre init`")


def build_spec(values: dict[str, Any], source: str = "the spec") -> Spec:
    """Validate a dict of spec values into a Spec, with errors a person can act on."""
    try:
        return Spec.model_validate(values)
    except ValidationError as err:
        raise _explain(err, source) from None


def read_spec_file(path: str | Path) -> dict[str, Any]:
    """The raw key/values of a spec file (validated later, after overrides are applied)."""
    path = Path(path)
    if not path.is_file():
        raise SpecError(f"spec file {str(path)!r} not found", hint="create one with `mlre init`")
    try:
        values = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise SpecError(
            f"{path} is not valid YAML{where}", hint="check indentation and colons"
        ) from None
    except UnicodeDecodeError:
        raise SpecError(f"{path} is not UTF-8 text", hint="save it as UTF-8") from None
    if not isinstance(values, dict):
        raise SpecError(f"{path} must hold a mapping of keys to values", hint="see `mlre init`")
    return values


def load_spec(path: str | Path | None = None, **overrides: Any) -> Spec:
    """The spec from ``path`` (or ./mlre.yaml when present), with ``overrides`` applied on top.

    Overrides whose value is None or an empty list are ignored, so CLI flags left unset never
    clobber the file.
    """
    values: dict[str, Any] = {}
    source = "the command-line options"
    if path is not None:
        values = read_spec_file(path)
        source = str(path)
    elif Path(SPEC_FILE).is_file():
        values = read_spec_file(SPEC_FILE)
        source = SPEC_FILE
    for key, value in overrides.items():
        if value is None or (isinstance(value, (list, tuple)) and not value):
            continue
        values[key] = list(value) if isinstance(value, tuple) else value
    return build_spec(values, source)


TEMPLATE_HEADER = """\
# mlre objective spec. Every key is optional; command-line flags override what is here.
# Reference: `mlre init --help`. Unknown keys are an error, so typos never pass silently.
"""


def _yaml_value(value: Any) -> str:
    """One value as YAML on a single line (flow style for lists and mappings)."""
    if isinstance(value, BaseModel):
        value = value.model_dump()
    text = yaml.safe_dump(value, default_flow_style=True, sort_keys=False, width=10_000)
    return text.strip().removesuffix("...").strip()


def _template_block(model: BaseModel, indent: str) -> list[str]:
    """The keys of ``model`` as commented YAML: a comment above top-level keys, beside nested ones."""
    lines: list[str] = []
    for name, field in type(model).model_fields.items():
        value = getattr(model, name)
        about = field.description or ""
        if not indent:
            lines.append("")
            lines += [f"# {line}" for line in textwrap.wrap(about, 96)]
        if isinstance(value, BaseModel):
            lines.append(f"{indent}{name}:" + (f"  # {about}" if indent and about else ""))
            lines += _template_block(value, indent + "  ")
            continue
        entry = f"{indent}{name}: {_yaml_value(value)}"
        lines.append(f"{entry:<30}  # {about}" if indent and about else entry)
    return lines


def render_template(target: str | None = None, project: str | None = None) -> str:
    """The commented mlre.yaml that ``mlre init`` writes: every key of the spec with its default
    and its description, generated from the model so that it can never disagree with it."""
    spec = Spec(target=target, project=project)
    return TEMPLATE_HEADER + "\n".join(_template_block(spec, "")) + "\n"
