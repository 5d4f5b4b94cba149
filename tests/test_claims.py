"""The paper's claims as checks: each one on hand-made figure tables where it holds and where it fails, the claim
list against the paper's, and the verdicts in captions and in the paper's LaTeX."""

from pathlib import Path

import pandas as pd
import pytest

from agd.figures.style import caption
from agd.tables.claims import CHECKS, COLUMNS, all_claims, caption_lines, claims_table, over_seeds, seeds_apart
from agd.tables.measured import FAILS, HOLDS, INCONCLUSIVE, UNTESTABLE
from agd.tables.paper import claims_tex

REPO = Path(__file__).parents[1]
CLAIMS = pd.read_csv(REPO / "paper/claims.csv")

# Every claim of the paper's text and captions (paper_spec section 2), by the check that tests it.
SPEC_CLAIMS = {
    "defaults_fail": "showcase: default Adam and SGD fail at depth 32 while AGD trains",
    "comparable_to_best_tuned": "showcase: AGD comparable to the best tuned Adam and SGD (ResNet-18 sweep)",
    "imagenet_top1": "showcase: ResNet-50 on ImageNet to 65.5% top-1",
    "comparable_to_tuned_adam": "fig1: AGD comparable to tuned Adam on FCN, ResNet-18, VGG-16",
    "tuned_rates": "fig2: Adam's optimum 1e-4, SGD's 1e-1",
    "three_decades": "fig2: the two optima three orders of magnitude apart",
    "sgd_objective": "fig2: SGD did not attain as low an objective as Adam or AGD",
    "wider_better": "fig3: wider was always better",
    "depth_8_16_beat_32": "fig3: depth 8 and 16 superior to depth 32",
    "best_cell": "fig3: best test accuracy at depth 4, width 2048",
    "worst_cell": "fig3: worst test accuracy at depth 2, width 64",
    "two_phases": "fig3: the two phases of eta and the objective",
    "eta_init_grows_with_width": "fig3: eta at init grows with width",
    "objective_at_init": "fig3: objective about 1 at init",
    "accuracy_order": "fig4: final accuracy generally improves with batch size",
    "eta_dip": "fig4: eta dips early, more for larger batches",
}


def curve(figure, role, optimizer="agd", *, run=None, lr=None, depth=None, width=None, batch_size=128,
          dataset="cifar10", train_acc=(0.1, 0.5), test_acc=None, train_loss=None, eta=None, selected=True,
          status="completed") -> pd.DataFrame:
    """One run's epoch rows as a figure table holds them (the last one marked final), in a panel that plays `role`
under a name of its own."""
    n = len(train_acc)
    test_acc = test_acc or train_acc
    train_loss = train_loss or [1.0 - 0.5 * i / max(n - 1, 1) for i in range(n)]
    eta = eta or [0.2] * n
    run = run or f"{figure}/{role}/{optimizer}/{lr}/{depth}/{width}/{batch_size}"
    return pd.DataFrame([dict(
        figure=figure, panel=f"my_{role}", panel_role=role, run=run, arch="fcn", dataset=dataset, optimizer=optimizer,
        lr=lr, depth=depth, width=width, batch_size=batch_size, status=status, epochs=n - 1, kind="epoch", epoch=e,
        step=10 * e, train_acc=train_acc[e], test_acc=test_acc[e], train_loss=train_loss[e], eta_mean=eta[e],
        selected=selected, final=e == n - 1, reason="") for e in range(n)])


def verdict(check: str, figure: pd.DataFrame | None):
    return CHECKS[check](figure)


def verdict_over_seeds(check: str, figure: pd.DataFrame):
    return over_seeds(CHECKS[check], figure)


def both(check, holding, failing):
    held, failed = verdict(check, holding), verdict(check, failing)
    assert held.verdict == HOLDS, held
    assert failed.verdict == FAILS, failed
    assert held.measured and failed.measured
    return held, failed


# --- the claim list ---

def test_every_claim_of_the_paper_is_listed_with_a_check_and_a_source():
    assert set(CLAIMS["check"]) == set(SPEC_CLAIMS), "paper/claims.csv and the paper's claims differ"
    assert set(CHECKS) == set(SPEC_CLAIMS)
    assert CLAIMS["id"].is_unique and CLAIMS["check"].is_unique
    assert set(CLAIMS["figure"]) <= {"showcase", "fig1", "fig2", "fig3", "fig4"}
    assert CLAIMS["source"].str.contains("arXiv|paper_spec").all() and CLAIMS["paper"].str.len().gt(0).all()


def test_without_runs_every_claim_is_untestable_with_a_reason():
    table = claims_table(CLAIMS, {}, "quick")
    assert list(table.columns) == COLUMNS and len(table) == len(CLAIMS)
    assert (table["verdict"] == UNTESTABLE).all()
    assert table["reason"].str.len().gt(0).all()


def test_an_unknown_check_is_named():
    with pytest.raises(ValueError, match="no check named 'psychic'"):
        claims_table(pd.DataFrame([dict(id="x", figure="fig1", check="psychic", claim="c", paper="p", source="s")]),
                     {}, "quick")


# --- each check, where it holds and where it fails ---

def showcase_fcn(adam_train):
    return pd.concat([curve("showcase", "default_rates", "agd", train_acc=[0.1, 0.996]),
                      curve("showcase", "default_rates", "adam", lr=1e-3, train_acc=[0.1, adam_train]),
                      curve("showcase", "default_rates", "sgd", lr=0.1, train_acc=[0.1, 0.1])])


def test_defaults_fail():
    held, failed = both("defaults_fail", showcase_fcn(0.10), showcase_fcn(0.90))
    assert "Adam 10.0%" in held.measured and "Adam 90.0%" in failed.measured


def sweep(agd_test):
    rows = [curve("showcase", "lr_sweep", "agd", test_acc=[0.1, agd_test], train_acc=[0.1, 0.99])]
    for optimizer, accs in (("adam", {1e-4: 0.92, 5e-4: 0.935, 1e-1: 0.1}), ("sgd", {5e-2: 0.928, 1.0: 0.1})):
        rows += [curve("showcase", "lr_sweep", optimizer, lr=lr, test_acc=[0.1, acc], train_acc=[0.1, acc])
                 for lr, acc in accs.items()]
    return pd.concat(rows)


def test_comparable_to_best_tuned():
    held, failed = both("comparable_to_best_tuned", sweep(0.908), sweep(0.85))
    assert "Adam 93.5%" in held.measured and "8.5 points below" in failed.measured


def imagenet(best, epochs):
    accs = [0.1] * epochs + [best]
    return curve("showcase", "imagenet", "agd", train_acc=accs, test_acc=accs)


def test_imagenet_top1():
    both("imagenet_top1", imagenet(0.655, 320), imagenet(0.60, 320))
    short = verdict("imagenet_top1", imagenet(0.40, 10))
    assert short.verdict == UNTESTABLE and "10 epochs" in short.reason
    assert "ImageNet not run" in verdict("imagenet_top1", None).reason


def fig1(gap):
    return pd.concat([curve("fig1", role, optimizer, lr=lr, test_acc=[0.1, acc])
                      for role in ("fcn", "resnet18", "vgg16")
                      for optimizer, lr, acc in (("agd", None, 0.60), ("adam", 1e-4, 0.60 + gap))])


def test_comparable_to_tuned_adam():
    both("comparable_to_tuned_adam", fig1(0.02), fig1(0.05))


def fig2(adam_lr, sgd_lr, sgd_loss):
    return pd.concat([curve("fig2", "fcn", "agd", train_loss=[1.0, 0.04]),
                      curve("fig2", "fcn", "adam", lr=adam_lr, train_loss=[1.0, 0.03]),
                      curve("fig2", "fcn", "sgd", lr=sgd_lr, train_loss=[1.0, sgd_loss])])


def test_tuned_rates_and_their_decades():
    held, failed = both("tuned_rates", fig2(1e-4, 1e-1, 0.1), fig2(1e-3, 1e-1, 0.1))
    assert held.measured == "Adam 0.0001, SGD 0.1"
    held, failed = both("three_decades", fig2(1e-4, 1e-1, 0.1), fig2(1e-3, 1e-1, 0.1))
    assert "2 decades" in failed.measured
    unselected = fig2(1e-4, 1e-1, 0.1).assign(selected=False)
    assert verdict("tuned_rates", unselected).verdict == UNTESTABLE


def test_sgd_objective():
    both("sgd_objective", fig2(1e-4, 1e-1, 0.137), fig2(1e-4, 1e-1, 0.01))


def grid(cells: dict) -> pd.DataFrame:
    """A Fig. 3 table from {(depth, width): (final train loss, final test acc, eta at init, objective at init)}."""
    return pd.concat([curve("fig3", "grid", depth=d, width=w, train_loss=[loss0, loss], test_acc=[0.1, test],
                            eta=[eta0, 0.1], train_acc=[0.1, 0.6])
                      for (d, w), (loss, test, eta0, loss0) in cells.items()])


def paper_like_grid() -> dict:
    cells = {}
    for d in (2, 4, 8, 16, 32):
        for i, w in enumerate((64, 128, 2048)):
            loss = (0.7 if d == 2 else 0.5 if d == 32 else 0.3) - 0.1 * i
            test = 0.45 + 0.02 * i + (0.1 if d == 4 else 0.0)
            cells[d, w] = (loss, test, 0.1 + 0.05 * i, 1.0)
    cells[2, 64] = (0.7, 0.42, 0.1, 1.0)
    return cells


def test_wider_better():
    held, failed = both("wider_better", grid(paper_like_grid()),
                        grid(paper_like_grid() | {(8, 2048): (0.9, 0.5, 0.2, 1.0)}))
    assert failed.measured == "not lower at depth 8: 128->2048"


def test_depth_8_16_beat_32():
    both("depth_8_16_beat_32", grid(paper_like_grid()), grid(paper_like_grid() | {(16, 128): (0.45, 0.5, 0.15, 1.0)}))


def test_best_and_worst_cells():
    held, failed = both("best_cell", grid(paper_like_grid()), grid(paper_like_grid() | {(8, 64): (0.3, 0.9, 0.1, 1.0)}))
    assert held.measured == "59.0% at depth 4, width 2048" and "depth 8, width 64" in failed.measured
    both("worst_cell", grid(paper_like_grid()), grid(paper_like_grid() | {(32, 128): (0.4, 0.3, 0.15, 1.0)}))


def test_eta_and_objective_at_init():
    both("eta_init_grows_with_width", grid(paper_like_grid()),
         grid(paper_like_grid() | {(32, 2048): (0.3, 0.5, 0.01, 1.0)}))
    both("objective_at_init", grid(paper_like_grid()), grid(paper_like_grid() | {(2, 128): (0.6, 0.5, 0.15, 1.4)}))


def phases(eta, train_acc):
    return curve("fig3", "grid", depth=4, width=2048, train_acc=train_acc, eta=eta,
                 train_loss=[1.0, 0.8, 0.6, 0.1, 0.01])


def test_two_phases():
    saturating = [0.1, 0.5, 0.9, 1.0, 1.0]
    both("two_phases", phases([0.2, 0.25, 0.45, 0.1, 0.02], saturating),
         phases([0.2, 0.25, 0.3, 0.35, 0.4], saturating))
    short = verdict("two_phases", phases([0.2, 0.25, 0.3, 0.35, 0.4], [0.1, 0.3, 0.5, 0.6, 0.7]))
    assert short.verdict == UNTESTABLE and "reaches 99%" in short.reason


def fig4(finals: dict, dips: dict) -> pd.DataFrame:
    rows = []
    for size, acc in finals.items():
        run = f"b{size}"
        rows.append(curve("fig4", "batch_sizes", batch_size=size, run=run, test_acc=[0.1, acc]))
        eta = [0.3, 0.3 * (1 - dips[size]), 0.3]
        rows.append(pd.DataFrame([dict(figure="fig4", panel="my_batch_sizes", panel_role="batch_sizes", run=run,
                                       batch_size=size, status="completed", optimizer="agd", kind="step", step=s + 1,
                                       epoch=1, eta_mean=e, selected=True, final=False)
                                  for s, e in enumerate(eta)]))
    return pd.concat(rows, ignore_index=True)


PAPER_FINALS = {32: 0.55, 128: 0.58, 1024: 0.60, 4096: 0.598}
PAPER_DIPS = {32: 0.25, 128: 0.47, 1024: 0.69, 4096: 0.74}


def test_accuracy_order_and_eta_dip():
    reversed_order = {32: 0.60, 128: 0.58, 1024: 0.55, 4096: 0.50}
    held, _ = both("accuracy_order", fig4(PAPER_FINALS, PAPER_DIPS), fig4(reversed_order, PAPER_DIPS))
    assert "59.8% (batch 4096)" in held.measured and "5 rise, 0 fall, 1 tie" in held.measured
    # "Generally improved": a tie within a point (10 test images of mnist5k) or one pair out of order keeps it.
    assert verdict("accuracy_order", fig4(PAPER_FINALS | {4096: 0.605}, PAPER_DIPS)).verdict == HOLDS
    assert verdict("accuracy_order", fig4(PAPER_FINALS | {128: 0.54}, PAPER_DIPS)).verdict == HOLDS
    held, _ = both("eta_dip", fig4(PAPER_FINALS, PAPER_DIPS), fig4(PAPER_FINALS, PAPER_DIPS | {4096: 0.1}))
    assert "74% (batch 4096)" in held.measured


def test_eta_at_init_reads_the_end_points_its_source_shows():
    """The source digitised each depth's narrowest and widest cell; a dip in between does not fail the claim."""
    dipping = paper_like_grid()
    middle = sorted({width for _, width in dipping})[1]
    dipping[(2, middle)] = (dipping[(2, middle)][0], dipping[(2, middle)][1], 0.01, dipping[(2, middle)][3])
    held = verdict("eta_init_grows_with_width", grid(dipping))
    assert held.verdict == HOLDS and "depth 2: 0.10 (width 64) to 0.20 (width 2048)" in held.measured, held


def seeded(frames: dict[int, pd.DataFrame]) -> pd.DataFrame:
    return pd.concat([frame.assign(seed=seed, run=frame["run"] + f"/s{seed}") for seed, frame in frames.items()],
                     ignore_index=True)


def test_a_claim_over_seeds_holds_only_where_every_seed_agrees():
    agree = seeded({1: fig4(PAPER_FINALS, PAPER_DIPS), 2: fig4(PAPER_FINALS, PAPER_DIPS)})
    held = verdict_over_seeds("accuracy_order", agree)
    assert held.verdict == HOLDS and "holds in 2 of 2 seeds (seeds 1, 2)" in held.measured, held

    reversed_order = {32: 0.60, 128: 0.58, 1024: 0.55, 4096: 0.50}
    split = seeded({1: fig4(PAPER_FINALS, PAPER_DIPS), 2: fig4(PAPER_FINALS, PAPER_DIPS),
                    3: fig4(reversed_order, PAPER_DIPS)})
    mixed = verdict_over_seeds("accuracy_order", split)
    assert mixed.verdict == INCONCLUSIVE, mixed
    assert "holds in 2 of 3 seeds (seeds 1, 2)" in mixed.measured and "fails in 1 of 3 seeds (seed 3)" in mixed.measured


def test_a_seed_that_did_not_run_is_named_and_the_others_decide():
    missing = fig4(PAPER_FINALS, PAPER_DIPS)
    missing = missing.assign(status="missing", final=False, reason="missing", test_acc=float("nan"))
    table = seeded({1: fig4(PAPER_FINALS, PAPER_DIPS), 2: fig4(PAPER_FINALS, PAPER_DIPS), 3: missing})
    held = verdict_over_seeds("accuracy_order", table)
    assert held.verdict == HOLDS, held
    assert "holds in 2 of 3 seeds" in held.measured and "seed 3: not testable, not run: missing" in held.measured


def test_a_one_seed_panel_beside_a_seeded_one_counts_for_every_seed():
    """Seeds split only the panels run over several seeds; a panel with one seed stands in every seed's view."""
    one = curve("fig2", "tuned", "adam", lr=1e-4).assign(seed=0)
    several = seeded({1: curve("fig2", "tuned", "sgd", lr=1e-1, run="sgd"),
                      2: curve("fig2", "tuned", "sgd", lr=1e-1, run="sgd")}).assign(panel="other")
    views = seeds_apart(pd.concat([one, several], ignore_index=True))
    assert sorted(views) == [1, 2]
    assert all(set(view["optimizer"]) == {"adam", "sgd"} for view in views.values())


# --- where the verdicts go ---

def test_verdicts_reach_the_caption_and_the_paper():
    table = claims_table(CLAIMS, {"fig2": fig2(1e-4, 1e-1, 0.137)}, "quick")
    by_id = table.set_index("id")
    assert by_id.loc["fig2_tuned_rates", "verdict"] == HOLDS
    assert by_id.loc["fig2_tuned_rates", "dataset"] == "cifar10" and by_id.loc["fig2_tuned_rates", "epochs"] == "1"
    lines = caption_lines(table, "fig2")
    assert len(lines) == 3 and all(": holds here" in line for line in lines)
    text = caption("Fig. 2", fig2(1e-4, 1e-1, 0.137), {"figure": "fig2", "preset": "quick"}, table)
    assert "Adam 0.0001, SGD 0.1" in text and "preset quick" in text
    tex = claims_tex(table)
    assert r"\begin{longtable}" in tex and "not testable here" in tex and r"\end{longtable}" in tex


def test_eta_dip_reads_epoch_rows_where_an_epoch_is_a_few_iterations():
    """mnist5k at batch 4096 is one iteration per epoch: the dip is read from the epoch rows."""
    table = fig4(PAPER_FINALS, PAPER_DIPS)
    table = table[~((table["batch_size"] == 4096) & (table["kind"] == "step") & (table["step"] > 1))]
    epochs = pd.DataFrame([dict(figure="fig4", panel="my_batch_sizes", panel_role="batch_sizes", run="b4096",
                                batch_size=4096, status="completed", optimizer="agd", kind="epoch", epoch=e, step=e,
                                eta_mean=eta, selected=True, final=False)
                           for e, eta in ((2, 0.2), (3, 0.3 * (1 - 0.8)), (4, 0.25))])
    held = verdict("eta_dip", pd.concat([table[table["step"] != 10], epochs], ignore_index=True))
    assert held.verdict == HOLDS and "80% (batch 4096)" in held.measured


def test_claims_of_figures_a_preset_does_not_draw_are_listed_as_untestable():
    fig2_claims = CLAIMS[CLAIMS["figure"] == "fig2"]
    checked = claims_table(fig2_claims, {"fig2": fig2(1e-4, 1e-1, 0.137)}, "quick")
    table = all_claims(CLAIMS, [checked, claims_table(CLAIMS.iloc[0:0], {}, "quick")], "quick")
    assert table["id"].tolist() == CLAIMS["id"].tolist()
    others = table[table["figure"] != "fig2"]
    assert (others["verdict"] == UNTESTABLE).all() and others["reason"].str.len().gt(0).all()
    assert (table[table["figure"] == "fig2"]["verdict"] == HOLDS).all()
