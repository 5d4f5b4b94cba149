"""The paper's claims (paper/claims.csv) checked on the runs just made: results/claims.csv.

Each claim names a check here. A check reads the aggregated figure tables (the rows each panel shows, their
final rows), finding a panel by its role (agd.plan.roles), and returns a verdict (agd.tables.measured): `holds`,
`fails`, or `not testable here` with the reason (not run in this preset, or too short to show the effect), and
what it measured beside the paper's value. Over several seeds a claim holds or fails only where every seed agrees
with the verdict on their mean; otherwise it is `inconclusive`, and the measured text says which seeds hold. A
verdict is about these runs: their preset, data and length are written next to it, and a claim made on CIFAR-10
over 2000 epochs that holds on mnist5k over 10 is reported as holding there, not as reproduced.
"""

import math
from collections.abc import Callable, Mapping

import numpy as np
import pandas as pd

from agd.optim import registry
from agd.tables.measured import (
    FAILS, HOLDS, INCONCLUSIVE, OBJECTIVE_AT_INIT, UNTESTABLE, Verdict, absent, all_epochs, decades, finals, judged,
    panel, panel_shown, tuned_rate, untestable, within,
)
from agd.tables.selection import ran

COLUMNS = ["id", "figure", "claim", "verdict", "measured", "paper", "reason", "preset", "dataset", "epochs", "source"]
COMPARABLE_POINTS = 3.0      # "comparable": within this many points of test accuracy (the paper's own gaps are <= 2.6)
FAILS_TO_TRAIN = 0.20        # "fails to train": final train accuracy at most chance (10%) plus 10 points
TRAINS = 0.50                # "trains": final train accuracy at least this
SATURATED = 0.99             # "train accuracy reaches 100%"
TIE_POINTS = 1.0             # two test accuracies this close tie (10 images of mnist5k's 1000, 100 of CIFAR's 10,000)
DIP_ITERATIONS = 50          # "initially dip": the paper's eta minima sit at iterations 21-32 (paper_spec 2.5)


def pct(value: float) -> str:
    return "n/a" if value is None or pd.isna(value) else f"{100 * value:.1f}%"


def per_optimizer(rows: pd.DataFrame, column: str) -> dict[str, float]:
    """Each optimizer's final value of `column` (the mean if a setting holds several runs)."""
    last = finals(rows)
    return last.groupby("optimizer")[column].mean().to_dict() if not last.empty else {}


# --- the checks ---

def defaults_fail(figure: pd.DataFrame | None) -> Verdict:
    train = per_optimizer(panel_shown(figure, "default_rates"), "train_acc")
    if not {"agd", "adam", "sgd"} <= set(train):
        return untestable(absent(figure, "default_rates"))
    measured = f"final train accuracy: AGD {pct(train['agd'])}, Adam {pct(train['adam'])}, SGD {pct(train['sgd'])}"
    fail = train["adam"] <= FAILS_TO_TRAIN and train["sgd"] <= FAILS_TO_TRAIN
    return judged(fail and train["agd"] >= TRAINS, measured)


def comparable_to_best_tuned(figure: pd.DataFrame | None) -> Verdict:
    sweep = finals(all_epochs(panel(figure, "lr_sweep")))  # every rate of the sweep, not only the tuned one
    agd = sweep[sweep["optimizer"] == "agd"]["test_acc"] if not sweep.empty else sweep
    tuned = sweep[sweep["optimizer"].map(lambda name: registry.get(name).tuned)] if not sweep.empty else sweep
    if agd.empty or tuned.empty:
        return untestable(absent(figure, "lr_sweep"))
    best = tuned.groupby("optimizer")["test_acc"].max()
    gap = best.max() - agd.mean()
    measured = (f"final test accuracy: AGD {pct(agd.mean())}; best over the sweep: "
                + ", ".join(f"{registry.get(name).label} {pct(value)}" for name, value in best.items()))
    if gap > 0:
        measured += f"; AGD {100 * gap:.1f} points below the best"
    return judged(100 * gap <= COMPARABLE_POINTS, measured)


def imagenet_top1(figure: pd.DataFrame | None) -> Verdict:
    rows = panel_shown(figure, "imagenet")
    agd = rows[rows["optimizer"] == "agd"] if not rows.empty else rows
    if agd.empty:
        return untestable("ImageNet not run (imagenet.enabled is false, or its runs are missing)")
    best = agd["test_acc"].max()
    epochs = int(agd["epoch"].max())
    measured = f"best test accuracy {pct(best)} over {epochs} epochs"
    if epochs < 300:
        return untestable(f"{epochs} epochs; the paper's value comes after 311-350", measured)
    return judged(100 * abs(best - 0.655) <= 1.0, measured)


def comparable_to_tuned_adam(figure: pd.DataFrame | None) -> Verdict:
    gaps, parts = [], []
    for role in ("fcn", "resnet18", "vgg16"):
        acc = per_optimizer(panel_shown(figure, role), "test_acc")
        if {"agd", "adam"} <= set(acc):
            gaps.append(100 * (acc["adam"] - acc["agd"]))
            parts.append(f"{role}: AGD {pct(acc['agd'])} vs Adam {pct(acc['adam'])}")
    if not gaps:
        return untestable(absent(figure))
    return judged(max(gaps) <= COMPARABLE_POINTS, "; ".join(parts), "" if len(gaps) == 3 else "only some panels ran")


def fig2_rates(figure: pd.DataFrame | None) -> tuple[float, float]:
    """Adam's and SGD's tuned rates on Fig. 2's FCN."""
    rows = panel(figure, "fcn")
    return tuned_rate(rows, "adam"), tuned_rate(rows, "sgd")


def tuned_rates(figure: pd.DataFrame | None) -> Verdict:
    adam, sgd = fig2_rates(figure)
    if math.isnan(adam) or math.isnan(sgd):
        return untestable(absent(figure, "fcn"))
    return judged(math.isclose(adam, 1e-4) and math.isclose(sgd, 1e-1), f"Adam {adam:g}, SGD {sgd:g}")


def three_decades(figure: pd.DataFrame | None) -> Verdict:
    adam, sgd = fig2_rates(figure)
    if math.isnan(adam) or math.isnan(sgd):
        return untestable(absent(figure, "fcn"))
    apart = decades(sgd, adam)
    return judged(round(apart) == 3, f"SGD's rate over Adam's: {apart:g} decades")


def sgd_objective(figure: pd.DataFrame | None) -> Verdict:
    loss = per_optimizer(panel_shown(figure, "fcn"), "train_loss")
    if not {"agd", "adam", "sgd"} <= set(loss):
        return untestable(absent(figure, "fcn"))
    measured = f"final train objective: AGD {loss['agd']:.3g}, Adam {loss['adam']:.3g}, SGD {loss['sgd']:.3g}"
    return judged(loss["sgd"] > max(loss["agd"], loss["adam"]), measured)


def grid(figure: pd.DataFrame | None) -> pd.DataFrame:
    """Fig. 3's final rows as a (depth, width) table of final train loss, test accuracy and train accuracy."""
    last = finals(panel_shown(figure, "grid"))
    if last.empty:
        return last
    return last.assign(depth=last["depth"].astype(int), width=last["width"].astype(int)).reset_index(drop=True)


def wider_better(figure: pd.DataFrame | None) -> Verdict:
    cells = grid(figure)
    if cells.empty:
        return untestable(absent(figure, "grid"))
    broken = []
    for depth, row in cells.sort_values("width").groupby("depth"):
        loss = row["train_loss"].to_numpy(float)
        drops = np.diff(loss) < 0
        if not drops.all():
            widths = row["width"].tolist()
            broken.append(f"depth {depth}: " + ", ".join(f"{widths[i]}->{widths[i + 1]}"
                                                          for i in np.flatnonzero(~drops)))
    measured = "a wider network ends at a lower objective at every depth" if not broken else \
        "not lower at " + "; ".join(broken)
    return judged(not broken, measured)


def depth_8_16_beat_32(figure: pd.DataFrame | None) -> Verdict:
    cells = grid(figure)
    if cells.empty or not {8, 16, 32} <= set(cells["depth"]):
        return untestable(absent(figure, "grid") if cells.empty else "depths 8, 16 and 32 not all run")
    loss = cells.pivot_table(index="width", columns="depth", values="train_loss")
    worse = [f"width {w}" for w, row in loss.iterrows() if not (row[8] < row[32] and row[16] < row[32])]
    measured = "depth 8 and 16 end below depth 32 at every width" if not worse else \
        "not below depth 32 at " + ", ".join(worse)
    return judged(not worse, measured)


def extreme_cell(figure: pd.DataFrame | None, best: bool) -> Verdict:
    cells = grid(figure)
    if cells.empty:
        return untestable(absent(figure, "grid"))
    cell = cells.loc[cells["test_acc"].idxmax() if best else cells["test_acc"].idxmin()]
    measured = f"{pct(cell['test_acc'])} at depth {cell['depth']}, width {cell['width']}"
    wanted_depth = 4 if best else 2
    wanted_width = cells["width"].max() if best else cells["width"].min()
    return judged(cell["depth"] == wanted_depth and cell["width"] == wanted_width, measured)


def best_cell(figure: pd.DataFrame | None) -> Verdict:
    return extreme_cell(figure, best=True)


def worst_cell(figure: pd.DataFrame | None) -> Verdict:
    return extreme_cell(figure, best=False)


def two_phases(figure: pd.DataFrame | None) -> Verdict:
    rows = panel_shown(figure, "grid")
    if rows.empty:
        return untestable(absent(figure, "grid"))
    saturated = [run for run, curve in rows.groupby("run") if curve["train_acc"].max() >= SATURATED]
    if not saturated:
        epochs = int(rows["epoch"].max())
        return untestable(f"no cell reaches {100 * SATURATED:.0f}% train accuracy in {epochs} epochs (the paper's "
                          "phases play out over hundreds of epochs)")
    agree = 0
    for run in saturated:
        curve = rows[rows["run"] == run].sort_values("epoch")
        eta = curve["eta_mean"].to_numpy(float)
        peak = int(np.nanargmax(eta))
        climbs = eta[peak] > 1.1 * eta[1] if len(eta) > 1 else False
        falls = eta[-1] <= 0.5 * eta[peak]
        near_saturation = curve["train_acc"].iloc[peak] >= 0.9
        agree += climbs and falls and near_saturation
    measured = f"{agree} of {len(saturated)} cells that reach {100 * SATURATED:.0f}% train accuracy show both phases"
    return judged(2 * agree >= len(saturated), measured)


def at_init(figure: pd.DataFrame | None) -> pd.DataFrame:
    rows = panel_shown(figure, "grid")
    if rows.empty:
        return rows
    first = rows[rows["epoch"] == 0]
    return first.assign(depth=first["depth"].astype(int), width=first["width"].astype(int))


def eta_init_grows_with_width(figure: pd.DataFrame | None) -> Verdict:
    """What the source shows: the digitised end points of each depth (paper_spec 2.4), so eta at the widest
    network above eta at the narrowest, at every depth; the widths between are not required to rise one by one."""
    first = at_init(figure)
    if first.empty:
        return untestable(absent(figure, "grid"))
    eta = first.pivot_table(index="depth", columns="width", values="eta_mean")
    ends = {depth: (row.dropna().iloc[0], row.dropna().iloc[-1])
            for depth, row in eta.iterrows() if row.notna().sum() >= 2}
    if not ends:
        return untestable("eta at init is logged at only one width per depth")
    broken = [f"depth {depth}" for depth, (narrow, wide) in ends.items() if not wide > narrow]
    text = "; ".join(f"depth {d}: {ends[d][0]:.2f} (width {eta.columns[0]}) to {ends[d][1]:.2f} "
                     f"(width {eta.columns[-1]})" for d in (min(ends), max(ends)))
    return judged(not broken, f"eta at init, {text}" + (f"; not higher at the widest at {', '.join(broken)}"
                                                       if broken else ""))


def objective_at_init(figure: pd.DataFrame | None) -> Verdict:
    first = at_init(figure)
    if first.empty:
        return untestable(absent(figure, "grid"))
    low, high = first["train_loss"].min(), first["train_loss"].max()
    return judged(within(first["train_loss"], OBJECTIVE_AT_INIT),
                  f"objective at init from {low:.3f} to {high:.3f} over the cells")


def fig4_runs(figure: pd.DataFrame | None) -> dict[int, pd.DataFrame]:
    rows = panel(figure, "batch_sizes")
    if rows.empty:
        return {}
    rows = ran(rows)
    return {int(size): run for size, run in rows.groupby("batch_size")}


def accuracy_order(figure: pd.DataFrame | None) -> Verdict:
    """"Generally improved" with batch size: of the pairs of batch sizes, more rise than fall, where two accuracies
    within TIE_POINTS of each other tie (the paper's own 60.0% and 59.8% at batch 1024 and 4096 are such a tie)."""
    runs = fig4_runs(figure)
    final = {size: finals(run)["test_acc"].mean() for size, run in runs.items()}
    if not {32, 128, 1024, 4096} <= set(final):
        return untestable(absent(figure, "batch_sizes"))
    sizes = (32, 128, 1024, 4096)
    steps = [100 * (final[b] - final[a]) for i, a in enumerate(sizes) for b in sizes[i + 1:]]
    rise, fall = sum(d > TIE_POINTS for d in steps), sum(d < -TIE_POINTS for d in steps)
    measured = ("final test accuracy " + ", ".join(f"{pct(final[s])} (batch {s})" for s in sizes)
                + f"; of {len(steps)} pairs of batch sizes {rise} rise, {fall} fall, {len(steps) - rise - fall} tie "
                  f"(within {TIE_POINTS:g} point)")
    return judged(rise > fall, measured)


def early_eta(run: pd.DataFrame) -> pd.DataFrame:
    """A run's eta by iteration over its first DIP_ITERATIONS: every logged step, then the epoch rows (an epoch
    row stands at its last iteration, and at batch sizes with few steps per epoch it is close to per-step)."""
    steps = run[run["kind"] == "step"][["step", "eta_mean"]]
    epochs = run[(run["kind"] == "epoch") & (run["epoch"] >= 1)][["step", "eta_mean"]]
    series = pd.concat([steps, epochs[~epochs["step"].isin(steps["step"])]]).sort_values("step")
    return series[(series["step"] >= 1) & (series["step"] <= DIP_ITERATIONS)].dropna()


def eta_dip(figure: pd.DataFrame | None) -> Verdict:
    """How far eta falls from its first iteration to its lowest in the first DIP_ITERATIONS (the paper's minima
    sit at iterations 21 to 32), per batch size."""
    runs = fig4_runs(figure)
    dips = {}
    for size, run in runs.items():
        series = early_eta(run)
        if len(series) >= 2 and series["step"].iloc[0] == 1:
            eta = series["eta_mean"].to_numpy(float)
            dips[size] = 1 - eta.min() / eta[0]
    if not {32, 128, 1024, 4096} <= set(dips):
        return untestable(absent(figure, "batch_sizes") if not runs else
                          f"eta of the first {DIP_ITERATIONS} iterations not logged at every batch size")
    sizes = sorted(dips)
    measured = "eta's dip in the first iterations: " + ", ".join(f"{100 * dips[s]:.0f}% (batch {s})" for s in sizes)
    return judged(all(dips[a] <= dips[b] for a, b in zip(sizes, sizes[1:])) and dips[sizes[0]] > 0, measured)


CHECKS: dict[str, Callable[[Mapping[str, pd.DataFrame]], Verdict]] = {
    "defaults_fail": defaults_fail, "comparable_to_best_tuned": comparable_to_best_tuned,
    "imagenet_top1": imagenet_top1, "comparable_to_tuned_adam": comparable_to_tuned_adam,
    "tuned_rates": tuned_rates, "three_decades": three_decades, "sgd_objective": sgd_objective,
    "wider_better": wider_better, "depth_8_16_beat_32": depth_8_16_beat_32, "best_cell": best_cell,
    "worst_cell": worst_cell, "two_phases": two_phases, "eta_init_grows_with_width": eta_init_grows_with_width,
    "objective_at_init": objective_at_init, "accuracy_order": accuracy_order, "eta_dip": eta_dip,
}


def setting(figure: pd.DataFrame | None) -> tuple[str, str]:
    """The datasets and epochs of a figure's runs, as its verdicts' context."""
    if figure is None or figure.empty:
        return "", ""
    present = ran(figure)
    datasets = ", ".join(sorted(present["dataset"].dropna().unique()))
    epochs = ", ".join(str(int(e)) for e in sorted(present["epochs"].dropna().unique()))
    return datasets, epochs


def seeds_apart(figure: pd.DataFrame | None) -> dict[int, pd.DataFrame]:
    """The figure as each seed saw it: a panel run over several seeds keeps that seed's runs, a panel run over one
    keeps all of its own (none when no panel has several seeds)."""
    if figure is None or figure.empty or "seed" not in figure:
        return {}
    counts = figure.groupby("panel")["seed"].nunique()
    several = figure["panel"].isin(counts[counts > 1].index)
    return {int(seed): figure[~several | (figure["seed"] == seed)]
            for seed in sorted(figure.loc[several, "seed"].dropna().unique())}


def seed_list(seeds: list[int]) -> str:
    return ("seed " if len(seeds) == 1 else "seeds ") + ", ".join(str(s) for s in seeds)


def over_seeds(check: Callable[[pd.DataFrame | None], Verdict], figure: pd.DataFrame | None) -> Verdict:
    """A check over the figure's seeds: measured on their mean, and `holds` or `fails` only where every seed that
    can be tested agrees with it; where they disagree, `inconclusive`. A seed that cannot be tested (missing,
    damaged, in progress) is named with its reason, and the verdict rests on the others ("2 of 3 seeds")."""
    pooled = check(figure)
    apart = seeds_apart(figure)
    if pooled.verdict == UNTESTABLE or len(apart) < 2:
        return pooled
    each = {seed: check(rows) for seed, rows in apart.items()}
    by_verdict = {v: [s for s, seen in each.items() if seen.verdict == v] for v in (HOLDS, FAILS, UNTESTABLE)}
    tested = len(by_verdict[HOLDS]) + len(by_verdict[FAILS])
    parts = [f"{verb} in {len(by_verdict[v])} of {len(each)} seeds ({seed_list(by_verdict[v])})"
             for v, verb in ((HOLDS, "holds"), (FAILS, "fails")) if by_verdict[v]]
    parts += [f"seed {s}: not testable, {each[s].reason}" for s in by_verdict[UNTESTABLE]]
    measured = f"{pooled.measured}; over seeds: {', '.join(parts)}"
    agree = tested > 0 and len(by_verdict[pooled.verdict]) == tested
    return Verdict(pooled.verdict if agree else INCONCLUSIVE, measured, pooled.reason)


def claims_table(claims: pd.DataFrame, figures: Mapping[str, pd.DataFrame], preset: str) -> pd.DataFrame:
    """Every claim's verdict over the seeds (over_seeds); a claim's check reads only its own figure's table, so
    one figure's claims can be checked (and its caption written) without the other figures' runs."""
    rows = []
    for claim in claims.to_dict("records"):
        if claim["check"] not in CHECKS:
            raise ValueError(f"claim {claim['id']}: no check named {claim['check']!r} in agd.tables.claims")
        figure = figures.get(claim["figure"])
        verdict = over_seeds(CHECKS[claim["check"]], figure)
        dataset, epochs = setting(figure)
        rows.append(dict(id=claim["id"], figure=claim["figure"], claim=claim["claim"], verdict=verdict.verdict,
                         measured=verdict.measured, paper=claim["paper"], reason=verdict.reason, preset=preset,
                         dataset=dataset, epochs=epochs, source=claim["source"]))
    return pd.DataFrame(rows, columns=COLUMNS)


def caption_lines(claims: pd.DataFrame, figure: str) -> list[str]:
    """A figure's claims with their verdicts, for its caption."""
    lines = []
    for claim in claims[claims["figure"] == figure].to_dict("records"):
        said = claim["verdict"] if claim["verdict"] == UNTESTABLE else f"{claim['verdict']} here"
        text = f"The paper: \"{claim['claim']}\": {said}"
        if isinstance(claim["measured"], str) and claim["measured"]:
            text += f" ({claim['measured']})"
        if isinstance(claim["reason"], str) and claim["reason"]:
            text += f": {claim['reason']}"
        lines.append(text + ".")
    return lines


def all_claims(claims: pd.DataFrame, checked: list[pd.DataFrame], preset: str) -> pd.DataFrame:
    """Every claim in paper/claims.csv's order: the figures' verdicts, and for a figure the preset does not
    draw, `not testable here` saying so."""
    done = pd.concat([table for table in checked if not table.empty], ignore_index=True) if checked else None
    have = set(done["id"]) if done is not None else set()
    rest = claims_table(claims[~claims["id"].isin(have)], {}, preset)
    table = pd.concat([t for t in (done, rest) if t is not None and not t.empty], ignore_index=True)
    order = {claim: i for i, claim in enumerate(claims["id"])}
    return table.sort_values("id", key=lambda ids: ids.map(order), ignore_index=True).reindex(columns=COLUMNS)
