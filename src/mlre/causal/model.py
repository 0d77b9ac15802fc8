"""The causal model a user states: treatment, outcome, confounders, effect modifiers and
instruments, checked against the table, put in plain words and drawn as a graph."""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from mlre.data.profile import ColumnProfile, profile_frame
from mlre.data.roles import Role
from mlre.errors import InputError, did_you_mean
from mlre.findings import Finding, Severity
from mlre.values import plain

#: A confounder that alone tells the groups apart this well is a label of the group, not a cause.
SEPARATING_AUC = 0.995


@dataclass
class CausalModel:
    """Who is treated, what is measured, and what is adjusted for, on a checked table."""

    treatment: str
    outcome: str
    confounders: list[str]
    modifiers: list[str] = field(default_factory=list)
    instruments: list[str] = field(default_factory=list)
    treated_value: Any = 1
    control_value: Any = 0
    rows: int = 0
    treated: int = 0
    dropped_rows: int = 0
    binary_outcome: bool = False

    @property
    def adjustment(self) -> list[str]:
        """The columns every estimator adjusts for: confounders and effect modifiers."""
        return list(dict.fromkeys([*self.confounders, *self.modifiers]))

    def words(self) -> list[str]:
        """The model and its assumptions as sentences a non-specialist can check."""
        t, y = self.treatment, self.outcome
        treated = f"{t} = {self.treated_value}"
        said = [
            f"The question: how much does {y} change when {treated} rather than "
            f"{self.control_value}? {self.treated:,} of {self.rows:,} rows are treated.",
            f"Adjusted for ({len(self.adjustment)}): {', '.join(self.adjustment) or 'nothing'}.",
            "Assumption 1, no unmeasured confounding: once these columns are taken into account, "
            f"who got {treated} is as good as random. Nothing in the data can prove this; the "
            "sensitivity analysis says how strong a missing confounder would have to be.",
            "Assumption 2, overlap: people like each treated person also appear untreated "
            "(and the reverse for the average effect on everyone). The propensity diagnostics "
            "check it.",
            "Assumption 3, no interference: one person's treatment does not change another's "
            f"{y}. The columns adjusted for were measured before the treatment (a consequence "
            "of the treatment must not be adjusted for).",
        ]
        if self.modifiers:
            said.append(
                f"Effect modifiers: the effect may differ with {', '.join(self.modifiers)}; "
                "the heterogeneous effect is estimated along them."
            )
        if self.instruments:
            said.append(
                f"Instruments: {', '.join(self.instruments)} change {t} but reach {y} only "
                "through it; they are kept out of the adjustment set."
            )
        if self.dropped_rows:
            said.append(f"{self.dropped_rows:,} rows without a {t} or {y} value were left out.")
        return said

    def edges(self) -> list[tuple[str, str]]:
        """The graph's arrows: confounders into both, modifiers into the outcome, instruments
        into the treatment, the treatment into the outcome."""
        out = [(self.treatment, self.outcome)]
        for c in self.confounders:
            out += [(c, self.treatment), (c, self.outcome)]
        out += [(m, self.outcome) for m in self.modifiers if m not in self.confounders]
        out += [(z, self.treatment) for z in self.instruments]
        return out

    def graph_svg(self, max_nodes: int = 12) -> str:
        """The causal graph as an inline SVG (confounders above, instruments left, modifiers
        below; more than ``max_nodes`` in a row are summarised in one node)."""
        width = 760
        height = 330 if any(m not in self.confounders for m in self.modifiers) else 215
        t_xy, y_xy = (250, 165), (560, 165)

        def row(names: list[str], y: int, x0: int, x1: int) -> list[tuple[str, int, int]]:
            if len(names) > max_nodes:
                names = [*names[: max_nodes - 1], f"+{len(names) - max_nodes + 1} more"]
            if not names:
                return []
            step = (x1 - x0) / max(len(names), 1)
            return [(n, int(x0 + step * (i + 0.5)), y) for i, n in enumerate(names)]

        top = row(self.confounders, 45, 20, width - 20)
        bottom = row([m for m in self.modifiers if m not in self.confounders], 290, 320, 740)
        left = [(z, 80, 120 + 50 * i) for i, z in enumerate(self.instruments[:4])]
        arrows = [(t_xy, y_xy, "#1f4e79", 3)]
        arrows += [((x, y + 12), t_xy, "#888", 1) for _, x, y in top]
        arrows += [((x, y + 12), y_xy, "#888", 1) for _, x, y in top]
        arrows += [((x, y - 12), y_xy, "#2e7d32", 1) for _, x, y in bottom]
        arrows += [((x + 40, y), t_xy, "#8e24aa", 1) for _, x, y in left]
        parts = [
            f"<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 {width} {height}' "
            f"width='100%' role='img' aria-label='causal graph'>",
            "<defs><marker id='arrow' viewBox='0 0 10 10' refX='10' refY='5' markerWidth='7' "
            "markerHeight='7' orient='auto-start-reverse'><path d='M0,0L10,5L0,10z' "
            "fill='#555'/></marker></defs>",
        ]
        for (x0, y0), (x1, y1), color, w in arrows:
            parts.append(
                f"<line x1='{x0}' y1='{y0}' x2='{x1}' y2='{y1}' stroke='{color}' "
                f"stroke-width='{w}' marker-end='url(#arrow)' opacity='0.7'/>"
            )

        def node(name: str, x: int, y: int, fill: str, bold: bool = False, w: int = 110) -> str:
            fits = max(4, w // 7)
            label = html.escape(name if len(name) <= fits else name[: fits - 1] + "…")
            weight = "bold" if bold else "normal"
            return (
                f"<g><rect x='{x - w // 2}' y='{y - 12}' width='{w}' height='24' rx='12' "
                f"fill='{fill}' stroke='#444'/><text x='{x}' y='{y + 4}' font-size='12' "
                f"text-anchor='middle' font-weight='{weight}' font-family='sans-serif'>"
                f"{label}</text></g>"
            )

        def spacing(nodes: list[tuple[str, int, int]], span: int) -> int:
            return min(110, span // max(len(nodes), 1) - 8)

        parts += [node(n, x, y, "#eeeeee", w=spacing(top, width - 40)) for n, x, y in top]
        parts += [node(n, x, y, "#e8f5e9", w=spacing(bottom, 420)) for n, x, y in bottom]
        parts += [node(n, x, y, "#f3e5f5") for n, x, y in left]
        parts.append(node(f"treatment: {self.treatment}", *t_xy, "#dbe9f6", True, 180))
        parts.append(node(f"outcome: {self.outcome}", *y_xy, "#fff3cd", True, 180))
        parts.append("</svg>")
        return "".join(parts)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready description."""
        return {
            "treatment": self.treatment,
            "outcome": self.outcome,
            "treated_value": plain(self.treated_value),
            "control_value": plain(self.control_value),
            "confounders": self.confounders,
            "effect_modifiers": self.modifiers,
            "instruments": self.instruments,
            "rows": self.rows,
            "treated": self.treated,
            "dropped_rows": self.dropped_rows,
            "assumptions": self.words(),
            "edges": self.edges(),
        }


def require_columns(df: pd.DataFrame, names: list[str], what: str) -> None:
    """InputError naming the first of ``names`` missing from ``df`` (the nearest column as hint)."""
    for name in names:
        if name not in df.columns:
            hint = did_you_mean(name, [str(c) for c in df.columns]) or (
                "columns: " + ", ".join(map(str, df.columns[:15]))
            )
            raise InputError(f"the {what} column {name!r} is not in the table", hint=hint)


def treatment_values(s: pd.Series, name: str, treated_value: Any = None) -> tuple[Any, Any]:
    """(treated, control) values of a binary treatment column; InputError for anything else."""
    values = pd.unique(s.dropna())
    if len(values) < 2:
        shown = "no values" if len(values) == 0 else f"only {values[0]!r}"
        raise InputError(
            f"the treatment {name!r} is constant ({shown}): there is no one to compare with",
            hint="the table must hold both treated and untreated rows",
        )
    if len(values) > 2:
        numeric = pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s)
        kind = (
            f"a number with {len(values):,} values ({s.min():g} to {s.max():g})"
            if numeric
            else f"a category with {len(values):,} values"
        )
        raise InputError(
            f"only a binary treatment (treated or not) is supported; {name!r} is {kind}",
            hint="compare two levels (keep only their rows) or make it binary, e.g. dose > 0",
        )
    if treated_value is not None:
        match = [v for v in values if str(v) == str(treated_value)]
        if not match:
            raise InputError(
                f"{name!r} has no value {treated_value!r}",
                hint="its values: " + ", ".join(map(repr, values)),
            )
        treated = match[0]
        return treated, next(v for v in values if v is not treated and str(v) != str(treated))
    if pd.api.types.is_bool_dtype(s.dtype):
        return True, False
    if pd.api.types.is_numeric_dtype(s.dtype):
        low, high = sorted(values)
        return high, low
    lowered = {str(v).strip().lower(): v for v in values}
    for yes, no in (("1", "0"), ("true", "false"), ("yes", "no"), ("treated", "control")):
        if yes in lowered and no in lowered:
            return lowered[yes], lowered[no]
    raise InputError(
        f"say which value of {name!r} means treated: it holds {values[0]!r} and {values[1]!r}",
        hint=f"--treated-value {values[0]}",
    )


def build_model(
    df: pd.DataFrame,
    *,
    treatment: str,
    outcome: str,
    confounders: list[str] | str,
    modifiers: list[str] | None = None,
    instruments: list[str] | None = None,
    treated_value: Any = None,
    id_columns: list[str] | None = None,
) -> tuple[CausalModel, pd.DataFrame, dict[str, ColumnProfile], list[Finding]]:
    """Check the table against the stated model; the model, the rows it uses (treatment as 0/1,
    outcome as numbers), the column profiles and findings about the choice of columns."""
    modifiers, instruments = list(modifiers or []), list(instruments or [])
    require_columns(df, [treatment], "treatment")
    require_columns(df, [outcome], "outcome")
    if treatment == outcome:
        raise InputError("the treatment and the outcome are the same column")
    require_columns(df, modifiers, "effect modifier")
    require_columns(df, instruments, "instrument")
    findings: list[Finding] = []
    data, dropped, (treated, control) = _usable_rows(df, treatment, outcome, treated_value)
    profiles = profile_frame(data, id_columns or [])
    if isinstance(confounders, str):
        if confounders != "auto":
            raise InputError(
                f"--confounders takes a list of columns or 'auto', not {confounders!r}"
            )
        reserved = {treatment, outcome, *modifiers, *instruments}
        confounders, chosen_findings = _auto_confounders(data, profiles, reserved, treatment)
        findings += chosen_findings
    else:
        confounders = _named_confounders(df, confounders, treatment, outcome, instruments)
    if not confounders and not modifiers:
        findings.append(
            Finding(
                severity=Severity.WARNING,
                check="causal_no_confounders",
                message="nothing is adjusted for: the estimate is causal only if the treatment "
                "was randomised",
            )
        )
    values = set(pd.unique(data[outcome]))
    model = CausalModel(
        treatment=treatment,
        outcome=outcome,
        confounders=list(confounders),
        modifiers=modifiers,
        instruments=instruments,
        treated_value=treated,
        control_value=control,
        rows=len(data),
        treated=int(data[treatment].sum()),
        dropped_rows=dropped,
        binary_outcome=values <= {0.0, 1.0},
    )
    return model, data, profiles, findings


def _usable_rows(
    df: pd.DataFrame, treatment: str, outcome: str, treated_value: Any
) -> tuple[pd.DataFrame, int, tuple[Any, Any]]:
    """The rows with both a treatment and an outcome (treatment as 0/1, outcome as numbers),
    how many were dropped, and the (treated, control) values of the treatment."""
    keep = df[treatment].notna() & df[outcome].notna()
    dropped = int((~keep).sum())
    data = df[keep].reset_index(drop=True)
    if len(data) == 0:
        raise InputError(f"no row has both a {treatment!r} and an {outcome!r} value")
    y = data[outcome]
    if pd.api.types.is_bool_dtype(y.dtype):
        y = y.astype(float)
    if not pd.api.types.is_numeric_dtype(y.dtype):
        sample = ", ".join(repr(v) for v in pd.unique(y)[:3])
        raise InputError(
            f"the outcome {outcome!r} is not numeric (values such as {sample})",
            hint="effects are differences in an outcome's mean: give a number or a 0/1 column",
        )
    treated, control = treatment_values(data[treatment], treatment, treated_value)
    data[treatment] = (data[treatment] == treated).astype(int)
    data[outcome] = pd.to_numeric(y).astype(float)
    return data, dropped, (treated, control)


def _auto_confounders(
    data: pd.DataFrame, profiles: dict[str, ColumnProfile], reserved: set[str], treatment: str
) -> tuple[list[str], list[Finding]]:
    """Every other usable column as a confounder, less those that alone tell the treated from
    the untreated (they label the group), with findings that say what was chosen and left out."""
    findings: list[Finding] = []
    usable = (Role.NUMERIC, Role.BOOLEAN, Role.CATEGORICAL, Role.DATETIME)
    chosen = [c for c, p in profiles.items() if c not in reserved and p.role in usable]
    left = [c for c in profiles if c not in reserved and c not in chosen]
    if left:
        findings.append(
            Finding(
                severity=Severity.INFO,
                check="causal_auto_confounders",
                message=f"left out of the adjustment set: {', '.join(left)} (identifiers, "
                "free text or constants)",
                evidence={"left_out": left},
            )
        )
    separating = _separating(data, chosen, treatment, profiles)
    for c, auc in separating.items():
        chosen.remove(c)
        findings.append(
            Finding(
                severity=Severity.WARNING,
                check="causal_group_label",
                column=c,
                message=f"{c!r} alone tells the treated from the untreated (AUC {auc:.3f}): "
                "it labels the group rather than causing the treatment, and was left out",
                evidence={"auc": round(auc, 4)},
                fix="name the confounders yourself if it must be adjusted for",
            )
        )
    findings.append(
        Finding(
            severity=Severity.INFO,
            check="causal_auto_confounders",
            message="confounders chosen automatically: every other usable column. A column "
            "that is a consequence of the treatment must not be among them; check the list",
            evidence={"confounders": chosen},
        )
    )
    return chosen, findings


def _named_confounders(
    df: pd.DataFrame, confounders: list[str], treatment: str, outcome: str, instruments: list[str]
) -> list[str]:
    """The confounders a user named, once each; InputError for one that is missing or is
    also the treatment, the outcome or an instrument."""
    confounders = list(dict.fromkeys(confounders))
    require_columns(df, confounders, "confounder")
    clash = [c for c in confounders if c in (treatment, outcome)]
    if clash:
        raise InputError(
            f"{clash[0]!r} cannot be a confounder: it is the "
            + ("treatment" if clash[0] == treatment else "outcome")
        )
    both = [c for c in confounders if c in instruments]
    if both:
        raise InputError(f"{both[0]!r} is named both a confounder and an instrument")
    return confounders


def _separating(
    data: pd.DataFrame, columns: list[str], treatment: str, profiles: dict[str, ColumnProfile]
) -> dict[str, float]:
    """Columns whose values alone sort treated from untreated almost perfectly."""
    from sklearn.metrics import roc_auc_score

    t = data[treatment].to_numpy()
    out = {}
    for c in columns:
        s = data[c]
        if profiles[c].role is Role.NUMERIC or pd.api.types.is_numeric_dtype(s.dtype):
            score = pd.to_numeric(s, errors="coerce").fillna(-np.inf).to_numpy(dtype=float)
        else:
            share = pd.Series(t).groupby(s.astype(str).to_numpy()).mean()
            score = s.astype(str).map(share).to_numpy(dtype=float)
        auc = roc_auc_score(t, score)
        auc = max(auc, 1 - auc)
        if auc >= SEPARATING_AUC:
            out[c] = float(auc)
    return out
