"""The Fig. 3 grid at initialisation: the plan of its epoch-0 runs, the table against the paper's digitised values,
and, when CIFAR-10 is in the data directory, eta and the objective at init measured against the paper's."""

import math
import os
from itertools import islice
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml

from agd.plan import grid, init_check
from agd.plan.bundles import table as bundle_table
from agd.tables.init_check import ETA_FACTOR, FAILS, HOLDS, eta_check, init_table, objective_check

REPO = Path(__file__).parents[1]
CONFIG = yaml.safe_load((REPO / "config.yaml").read_text())
REFERENCE = pd.read_csv(REPO / "paper/init_values.csv")
DATA_DIR = Path(os.environ.get("AGD_DATA_DIR", REPO / CONFIG["data_dir"]))
BATCHES = 16  # at init nothing changes between batches: the mean of 16 estimates the epoch's to a few percent


def test_the_init_runs_are_the_fig3_grid_for_epoch_0_in_their_own_directory():
    config = CONFIG | {"preset": "paper"}
    members = grid.membership(config)
    runs = init_check.runs(members, bundle_table(grid.runs(config), members, grid.preset_of(config)),
                           grid.preset_of(config))
    assert len(runs) == 30 and (runs["epochs"] == 0).all() and (runs["dataset"] == "cifar10").all()
    assert sorted(runs["depth"].unique()) == [2, 4, 8, 16, 32] and runs["width"].max() == 2048
    assert runs["bundle"].nunique() == math.ceil(30 / grid.preset_of(config)["bundle_size"])
    assert init_check.RUNS_DIR != "results/runs"  # the figure's runs are never touched


def write_epoch_zero(runs_dir: Path, run: str, eta: float, objective: float) -> None:
    out = runs_dir / run
    out.mkdir(parents=True)
    pd.DataFrame([dict(kind="epoch", epoch=0, step=0, train_loss=objective, train_acc=0.1, test_acc=0.1,
                       eta_mean=eta)]).to_csv(out / "metrics.csv", index=False)


def test_table_compares_the_papers_cells_only_in_the_papers_setting(tmp_path):
    cells = [(2, 64, 0.17, 1.01), (2, 2048, 0.45, 0.98), (32, 64, 0.05, 1.3), (32, 2048, 0.30, 1.0)]
    runs = []
    for dataset in ("cifar10", "mnist5k"):
        for depth, width, eta, objective in cells:
            run = f"{dataset}/d{depth}-w{width}"
            write_epoch_zero(tmp_path, run, eta, objective)
            runs.append(dict(run=run, depth=depth, width=width, dataset=dataset, loss="mse"))
    table = init_table(runs, tmp_path, REFERENCE)
    cifar = table[table["dataset"] == "cifar10"].set_index(["depth", "width"])
    assert cifar.loc[(2, 64), "eta_check"] == HOLDS and cifar.loc[(2, 2048), "eta_check"] == FAILS
    assert cifar.loc[(32, 64), "objective_check"] == FAILS and cifar.loc[(2, 2048), "objective_check"] == HOLDS
    assert (cifar.xs(2)["eta_rises_with_width"] == HOLDS).all() and (cifar.xs(32)["eta_rises_with_width"] == HOLDS).all()
    mnist = table[table["dataset"] == "mnist5k"]
    assert mnist["paper_eta"].isna().all() and (mnist["eta_check"] == "").all()


def test_eta_is_matched_within_a_tenth_of_a_decade():
    assert eta_check(0.18 * ETA_FACTOR * 0.99, 0.18) == HOLDS and eta_check(0.18 / ETA_FACTOR * 0.99, 0.18) == FAILS
    assert eta_check(0.2, math.nan) == "" and objective_check(1.05, "mse") == HOLDS
    assert objective_check(2.3, "xent") == ""  # the paper's 1.0 is the square loss


def cifar10_present() -> bool:
    from agd.data.sources import read_raw
    try:
        read_raw("cifar10", DATA_DIR, download=False)
        return True
    except (RuntimeError, FileNotFoundError, OSError):
        return False


def measure_at_init(depth: int, width: int, tmp_path: Path, dataset: str = "cifar10") -> tuple[float, float]:
    """The training job's own epoch-0 pass (agd.jobs.train), over its first BATCHES batches."""
    from agd.jobs.arguments import parse_args
    from agd.jobs.distributed import Ranks
    from agd.jobs.train import Cohort, build
    from agd.plan.specs import ImageRun

    spec = ImageRun(arch="fcn", dataset=dataset, depth=depth, width=width, batch_size=128, optimizer="agd",
                    epochs=0).filled()
    out = tmp_path / f"d{depth}-w{width}"
    spec, execution = parse_args([*spec.argv(), "--out", str(out), "--data-dir", str(DATA_DIR), "--device", "cpu"])
    torch.manual_seed(spec.seed)
    member = build(spec, execution, torch.device("cpu"), Ranks(), out)
    cohort = Cohort([member])
    for pairs in islice(cohort.batches(0, 0), BATCHES):
        cohort.measure_at_init(pairs)
    eta = member.meter.eta.summary()[0]
    objective = member.meter.train_metrics(member.reduce)[0]
    return eta, objective


@pytest.mark.parametrize("depth", [2, 32])
def test_the_measurement_at_init_runs_and_keeps_the_papers_bounds(depth, tmp_path):
    """On the bundled MNIST subset: the objective of a zero-ish output is about 1, and eta < log 2 (G < 2 under
    the paper's init, its Lemma "bounded gradient")."""
    eta, objective = measure_at_init(depth, 64, tmp_path, dataset="mnist5k")
    assert objective_check(objective, "mse") == HOLDS, objective
    assert 0 < eta < math.log(2)


@pytest.mark.slow
@pytest.mark.parametrize("cell", REFERENCE.to_dict("records"), ids=lambda c: f"d{c['depth']}-w{c['width']}")
def test_eta_and_objective_at_init_match_the_paper_on_cifar10(cell, tmp_path):
    if not cifar10_present():
        pytest.skip(f"CIFAR-10 is not in {DATA_DIR} (set AGD_DATA_DIR, or fetch it with "
                    "`snakemake --cores 1 data/.cifar10.ready`): eta at init not checked against the paper")
    eta, objective = measure_at_init(int(cell["depth"]), int(cell["width"]), tmp_path)
    print(f"depth {cell['depth']} width {cell['width']}: eta {eta:.3f} (paper {cell['eta']}), objective {objective:.3f}")
    assert eta_check(eta, cell["eta"]) == HOLDS, f"eta at init {eta:.3f}, the paper's {cell['eta']}"
    assert objective_check(objective, "mse") == HOLDS, f"objective at init {objective:.3f}"
