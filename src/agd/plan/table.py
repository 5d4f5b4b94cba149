"""Run tables for any job kind: one row per (figure, panel, run) a grid asks for, and one per unique run.

Figures that share a run share its directory; it trains for the longest length any of them asks for and logs
as much as any needs (epoch e of a run does not depend on how many epochs follow it).
"""

import pandas as pd

from agd.optim import registry
from agd.plan.errors import ConfigError
from agd.plan.specs import KEY, RunSpec


def member(spec: RunSpec, **context) -> dict:
    """A membership row: the context (figure, panel, gpus, enabled, ...), the run's key settings and
    family, and as `panel_<name>` the length and logging this panel asks of it. A run its job would refuse is
    a ConfigError naming the figure and panel, raised while planning (the job's own checks, agd.plan.specs)."""
    problem = spec.problem()
    if problem:
        where = ", ".join(f"{name} {context[name]}" for name in ("figure", "panel") if name in context)
        raise ConfigError(f"config.yaml: {where}: {spec.program} would refuse a run of it: {problem}")
    row = {**context, "run": spec.run_id(), "family": registry.family_of(spec.optimizer)}
    for f in spec.fields():
        row[f.name if f.role == KEY else f"panel_{f.name}"] = getattr(spec, f.name)
    return row


def unique_runs(table: pd.DataFrame, spec: type[RunSpec]) -> pd.DataFrame:
    """One row per run: its key settings, the largest length and logging any panel asks for, the most GPUs."""
    key = [f.name for f in spec.key_fields()]
    merged = [f.name for f in spec.fields() if f.role != KEY]
    columns = ["run", *key, "family", *merged, "gpus", "enabled"]
    if table.empty:
        return pd.DataFrame(columns=columns)
    grouped = table.groupby("run", sort=True, dropna=False)
    unique = grouped.first()[[*key, "family", "enabled"]]
    for name in merged:
        unique[name] = grouped[f"panel_{name}"].max()
    unique["gpus"] = grouped["gpus"].max()
    return unique.reset_index()[columns]

