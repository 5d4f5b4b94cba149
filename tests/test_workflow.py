"""The Snakemake workflow, run for real in a scratch working directory with its own copy of config.yaml."""

import itertools
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml

from agd.jobs.metrics import COLUMNS
from agd.plan import grid, stale
from agd.plan.specs import ImageRun, LMRun

REPO = Path(__file__).parents[1]
CONFIG = yaml.safe_load((REPO / "config.yaml").read_text())
FIGURES = ["showcase", "fig1", "fig2", "fig3", "fig4"]


def snakemake(workdir: Path, *args: str, config: dict | None = None, repo: Path = REPO) -> subprocess.CompletedProcess:
    (workdir / "config.yaml").write_text(yaml.safe_dump(config or CONFIG, sort_keys=False))
    return subprocess.run(
        [sys.executable, "-m", "snakemake", "-s", str(repo / "Snakefile"), "-d", str(workdir), *args],
        capture_output=True, text=True,
    )


def planned(result: subprocess.CompletedProcess) -> dict[str, int]:
    """Jobs per rule from a dry run's 'Job stats' table."""
    assert result.returncode == 0, result.stdout + result.stderr
    stats = result.stdout.split("Job stats:")[-1]
    counts = dict(re.findall(r"^(\w+)\s+(\d+)$", stats, flags=re.M))
    return {rule: int(n) for rule, n in counts.items() if rule != "total"}


def drawn(result: subprocess.CompletedProcess) -> set[str]:
    """The figures a dry run's figure jobs would draw."""
    return set(re.findall(r"^\s+output: figures/(\w+)\.pdf", result.stdout, flags=re.M))


def members(result: subprocess.CompletedProcess, runs_dir: str = "results/runs") -> set[str]:
    """The runs of `runs_dir` that a dry run's training jobs (printed with -p) would hold."""
    return set(re.findall(rf"--member {re.escape(runs_dir)}/(\S+)", result.stdout))


def unfinished(workdir: Path, runs: set[str]) -> set[str]:
    """The runs a training job would train rather than skip: those without a run.json."""
    return {run for run in runs if not (workdir / "results/runs" / run / "run.json").exists()}


def summary_runs(workdir: Path) -> list[str]:
    return pd.read_csv(workdir / "results/summary.csv")["run"].tolist()


def expected_runs(config: dict, figures: list[str]) -> set[tuple]:
    """Unique runs of some figures, from the grid in the config (ImageNet off)."""
    preset = config["presets"][config["preset"]]
    keys = set()
    for figure in figures:
        for panel in preset["figures"][figure]["panels"].values():
            if panel["dataset"] == "imagenet":
                continue
            depths = panel.get("depth", [None]) if panel["arch"] == "fcn" else [None]
            for opt, lrs in panel["optimizers"].items():
                for depth, width, bs, lr, seed in itertools.product(
                    depths, panel.get("width", [None]), panel["batch_size"], lrs or [None], panel.get("seeds", [0])
                ):
                    keys.add((panel["arch"], panel["dataset"], panel.get("loss", "mse"), depth, width, bs, opt, lr, seed))
    return keys


def with_preset(name: str, **changes) -> dict:
    config = yaml.safe_load(yaml.safe_dump(CONFIG))
    config["preset"] = name
    config.update(changes)
    return config


def test_dry_run_plans_the_whole_paper_grid(tmp_path):
    result = snakemake(tmp_path, "-n", "-p")
    jobs = planned(result)
    planned_runs = members(result)
    assert len(expected_runs(CONFIG, FIGURES)) == 91  # the paper's figures
    runs = grid.runs(CONFIG)
    assert planned_runs == set(runs[runs["enabled"]]["run"])  # and the peers block's
    assert jobs["train"] < len(planned_runs) / 2  # several runs per training job
    assert set(FIGURES) <= drawn(result) and jobs["figure"] == len(drawn(result))  # one rule draws every figure
    assert jobs["download_data"] == 2  # CIFAR-10 and CIFAR-100, once each


@pytest.mark.parametrize("figure", FIGURES)
def test_one_figure_plans_only_its_runs(tmp_path, figure):
    result = snakemake(tmp_path, "-n", "-p", f"figures/{figure}.pdf")
    jobs = planned(result)
    assert len(members(result)) == len(expected_runs(CONFIG, [figure]))  # a figure's training jobs hold its runs only
    assert jobs["figure"] == 1 and drawn(result) == {figure}
    assert "summary" not in jobs


def edit(config: dict, path: str, value) -> dict:
    config = yaml.safe_load(yaml.safe_dump(config))
    *parents, last = path.split(".")
    node = config
    for key in parents:
        node = node[key]
    node[last] = value
    return config


BAD_CONFIGS = [
    ("epochz", "epochz"),
    ("presets.paper.figures.fig3.panels.grid.epochz", "epochz"),
    ("presets.paper.figures.fig3.panels.grid.arch", "mlp"),
    ("presets.paper.figures.fig2.panels.fcn.optimizers.adam", "adam"),
    ("presets.paper.figures.fig3.panels.grid.width", "width"),
    ("tuning_rule", "tuning_rule"),
]
BAD_VALUES = {"epochz": 3, "arch": "mlp", "adam": [], "width": [-64], "tuning_rule": "lowest_lr"}


@pytest.mark.parametrize("path, named", BAD_CONFIGS)
def test_schema_rejects_bad_configs_naming_the_key(tmp_path, path, named):
    value = BAD_VALUES.get(path.split(".")[-1], 3)
    result = snakemake(tmp_path, "-n", config=edit(CONFIG, path, value))
    assert result.returncode != 0
    assert named in result.stdout + result.stderr
    assert not (tmp_path / "results").exists()


def test_unknown_preset_is_named(tmp_path):
    result = snakemake(tmp_path, "-n", "--config", "preset=laptop")
    assert result.returncode != 0
    assert "preset: 'laptop'" in result.stdout + result.stderr


def test_imagenet_without_data_stops_before_any_job(tmp_path, monkeypatch):
    monkeypatch.delenv("IMAGENET_PATH", raising=False)
    result = snakemake(tmp_path, "-n", config=with_preset("paper", imagenet={"enabled": True, "root": None}))
    assert result.returncode != 0
    assert "imagenet.root" in result.stdout + result.stderr


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_preset_without_cuda_stops_before_any_job(tmp_path):
    result = snakemake(tmp_path, "--cores", "1", "figures/fig2.pdf")
    assert result.returncode != 0
    assert "preset=quick" in result.stdout + result.stderr
    assert not (tmp_path / "results").exists() and not (tmp_path / "logs").exists()


# --- a real run of part of the quick preset ---

QUICK_TARGETS = ["figures/fig2.pdf", "figures/fig4.pdf"]
HAVE_TEX = shutil.which("latexmk") is not None


def quick_subset() -> dict:
    """The quick preset with its two cheapest figures and its transformer panel (no peers), so `snakemake` (all)
    stays short."""
    config = with_preset("quick")
    figures = config["presets"]["quick"]["figures"]
    config["presets"]["quick"]["figures"] = {name: figures[name] for name in ("fig2", "fig4")}
    del config["presets"]["quick"]["peers"]
    return config


@pytest.fixture(scope="module")
def workflow_copy(tmp_path_factory) -> Path:
    """The workflow's files in a scratch place, so a test can edit plotting code without touching the repo."""
    copy = tmp_path_factory.mktemp("repo")
    shutil.copy(REPO / "Snakefile", copy)
    for folder in ("workflow", "src"):
        shutil.copytree(REPO / folder, copy / folder, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    shutil.copytree(REPO / "paper", copy / "paper", ignore=shutil.ignore_patterns("generated", "*.pdf", "*.aux",
                                                                                 "*.log", "*.fls", "*.fdb_latexmk"))
    return copy


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory, workflow_copy) -> Path:
    workdir = tmp_path_factory.mktemp("quick")
    result = snakemake(workdir, "--cores", "2", config=quick_subset(), repo=workflow_copy)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return workdir


@pytest.mark.slow
def test_quick_subset_end_to_end(quick_run):
    config = quick_subset()
    for figure in ("fig2", "fig4"):
        assert (quick_run / f"figures/{figure}.pdf").stat().st_size > 0
        assert (quick_run / f"figures/{figure}.png").stat().st_size > 0
        table = pd.read_csv(quick_run / f"results/{figure}.csv")
        keys = ImageRun.columns()  # arch, dataset, loss, depth, width, batch_size, optimizer, lr, seed, ...
        assert list(table.columns[:len(keys) + 6]) == ["figure", "panel", "panel_role", "run", *keys, "status", "epochs"]
        assert set(COLUMNS) <= set(table.columns)
        assert (table["status"] == "completed").all()
        assert table["run"].nunique() == len(expected_runs(config, [figure]))
    fig4 = pd.read_csv(quick_run / "results/fig4.csv")
    first_epoch = fig4[(fig4["kind"] == "step") & (fig4["batch_size"] == 32)]
    assert first_epoch["step"].tolist() == list(range(1, 126))  # every iteration of epoch 1 at batch 32

    tuned = pd.read_csv(quick_run / "results/tuned/fig2.csv")
    assert sorted(tuned["optimizer"]) == ["adam", "sgd"]
    assert tuned["candidates"].tolist() == [5, 5]
    run_dir = quick_run / "results/runs/fcn-mnist5k-mse/d8-w64-bs128/adam-lr1e-04/seed0"
    for name in ("metrics.csv", "run.json", "train.log"):
        assert (run_dir / name).exists(), name
    bundles = list((quick_run / "results/bundles").glob("*.json"))  # each training job's manifest and benchmark
    assert bundles and all(path.with_suffix(".benchmark.tsv").exists() for path in bundles)
    assert len(bundles) <= len(summary_runs(quick_run)) / 2

    summary = pd.read_csv(quick_run / "results/summary.csv")
    assert len(summary) == len(expected_runs(config, ["fig2", "fig4"])) and (summary["status"] == "completed").all()
    numbers = pd.read_csv(quick_run / "results/numbers.csv").set_index("id")
    assert numbers.loc["fig4_b128", "dataset"] == "mnist5k" and numbers.loc["fig4_b128", "reproduced"] > 20
    assert numbers.loc["fig1_fcn_agd", "run"] == "the figure is not in this preset"
    assert numbers["difference"].isna().all()  # nothing in the quick preset is the paper's setting
    assert "dataset mnist5k, not cifar10" in numbers.loc["fig4_b128", "reason"]

    claims = pd.read_csv(quick_run / "results/claims.csv")
    assert claims["id"].tolist() == pd.read_csv(REPO / "paper/claims.csv")["id"].tolist()  # none missing
    assert set(claims["verdict"]) <= {"holds", "fails", "inconclusive", "not testable here"}
    ran_here = claims[claims["figure"].isin(["fig2", "fig4"])]
    assert (ran_here["verdict"] != "not testable here").any() and (ran_here["dataset"] == "mnist5k").all()
    caption = (quick_run / "figures/fig2.txt").read_text()
    assert "preset quick" in caption
    for claim in ran_here[ran_here["figure"] == "fig2"].to_dict("records"):
        assert f"\": {claim['verdict']}" in caption


@pytest.mark.slow
def test_quick_transformer_learns_context_on_the_offline_text(quick_run):
    """The issue's bar: a tiny GPT trained by AGD on the CPU ends below the unigram entropy of its text."""
    table = pd.read_csv(quick_run / "results/transformer.csv")
    assert (table["status"] == "completed").all() and sorted(table["optimizer"].unique()) == ["adamw", "agd"]
    final = table.sort_values("iter").groupby("optimizer").last()
    entropy = table["unigram_entropy"].iloc[0]
    print(f"final validation loss: AGD {final.loc['agd', 'val_loss']:.4f}, AdamW {final.loc['adamw', 'val_loss']:.4f}; "
          f"unigram entropy {entropy:.4f}")
    assert final.loc["agd", "val_loss"] < entropy
    assert final.loc["agd", "iter"] == final.loc["agd", "max_iters"]
    assert table[table["optimizer"] == "adamw"]["lr"].dropna().is_monotonic_decreasing  # the cosine, past warmup
    assert (quick_run / "figures/transformer.png").stat().st_size > 0
    assert "text python_docs_char" in (quick_run / "figures/transformer.txt").read_text()
    summary = pd.read_csv(quick_run / "results/transformer_summary.csv")
    assert len(summary) == 2 and (summary["tokens_per_s"] > 0).all()


@pytest.mark.slow
@pytest.mark.skipif(not HAVE_TEX and not os.environ.get("AGD_REQUIRE_TEX"), reason="TeX (latexmk) not installed")
def test_paper_and_report_build(quick_run, workflow_copy):
    paper = quick_run / "paper/main.pdf"
    assert paper.stat().st_size > 10_000
    report = snakemake(quick_run, "--report", "report.html", config=quick_subset(), repo=workflow_copy)
    assert report.returncode == 0, report.stderr[-2000:]
    html = (quick_run / "report.html").read_text()
    assert "fig2.png" in html and "fig4.png" in html and "summary.csv" in html


def test_a_failing_figure_leaves_its_reason_in_its_log(tmp_path):
    """The figure rule's script writes to its log: drawn from an empty table, a figure fails and its log says why."""
    (tmp_path / "results/claims").mkdir(parents=True)
    (tmp_path / "results/fig2.csv").write_text("")
    (tmp_path / "results/claims/fig2.csv").write_text("")
    result = snakemake(tmp_path, "--cores", "1", "figures/fig2.pdf", "--allowed-rules", "figure",
                       config=with_preset("quick"))
    assert result.returncode != 0 and "logs/figures/fig2.log" in result.stdout + result.stderr
    log = (tmp_path / "logs/figures/fig2.log").read_text()
    assert "Traceback" in log and "EmptyDataError: No columns to parse from file" in log
    assert not (tmp_path / "figures/fig2.pdf").exists()


def test_paper_without_tex_says_how_to_install_it(tmp_path):
    """The paper rule on a machine without latexmk: a message with the install command, not a crash."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in Path("/usr/bin").iterdir():
        if tool.name not in ("latexmk", "pdflatex"):
            (bin_dir / tool.name).symlink_to(tool)
    (tmp_path / "paper").mkdir()
    shutil.copy(REPO / "paper/main.tex", tmp_path / "paper")
    for name in ("generated/figures.tex", "generated/numbers.tex", "generated/claims.tex", "generated/tables.tex",
                 "generated/preset.tex", "generated/peers.tex"):
        (tmp_path / "paper" / name).parent.mkdir(exist_ok=True)
        (tmp_path / "paper" / name).write_text("")
    for figure in [*FIGURES, "peers", "profiles", "sensitivity", "init_ablation", "transformer"]:
        (tmp_path / "figures").mkdir(exist_ok=True)
        (tmp_path / f"figures/{figure}.pdf").write_text("")
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(with_preset("quick")))
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(tmp_path), "--cores", "1",
         "paper/main.pdf", "--allowed-rules", "paper"],
        capture_output=True, text=True, env={**os.environ, "PATH": f"{Path(sys.executable).parent}:{bin_dir}"},
    )
    assert result.returncode != 0
    assert "needs TeX" in result.stdout + result.stderr and "apt-get install latexmk" in result.stdout + result.stderr


@pytest.mark.slow
def test_reruns_touch_only_what_changed(quick_run, workflow_copy):
    config = quick_subset()

    def dry_run(*targets, config=config):
        return snakemake(quick_run, "-n", *targets, config=config, repo=workflow_copy)

    assert "Nothing to be done" in dry_run(*QUICK_TARGETS).stdout

    # Editing a figure's plotting code redraws that figure only.
    module = workflow_copy / "src/agd/figures/fig2.py"
    module.write_text(module.read_text() + "# restyled\n")
    plan = dry_run(*QUICK_TARGETS)
    assert planned(plan) == {"figure": 1} and drawn(plan) == {"fig2"}
    module = workflow_copy / "src/agd/figures/transformer.py"
    module.write_text(module.read_text() + "# restyled\n")
    plan = dry_run("figures/transformer.pdf")
    assert planned(plan) == {"figure": 1} and drawn(plan) == {"transformer"}
    redraw = snakemake(quick_run, "--cores", "1", "figures/fig2.pdf", config=config, repo=workflow_copy)
    assert redraw.returncode == 0, redraw.stderr[-2000:]

    # Editing a module every figure imports redraws them all, and nothing else.
    module = workflow_copy / "src/agd/figures/style.py"
    module.write_text(module.read_text() + "# restyled\n")
    plan = dry_run(*QUICK_TARGETS, "figures/transformer.pdf")
    assert planned(plan) == {"figure": 3} and drawn(plan) == {"fig2", "fig4", "transformer"}
    redraw = snakemake(quick_run, "--cores", "1", *QUICK_TARGETS, "figures/transformer.pdf", config=config,
                       repo=workflow_copy)
    assert redraw.returncode == 0, redraw.stderr[-2000:]

    # A new seed trains only the new runs (a training job skips the finished ones it holds).
    seeded = edit(config, "presets.quick.figures.fig2.panels.fcn.seeds", [0, 1])
    held = members(dry_run("-p", "figures/fig2.pdf", config=seeded))
    assert len(unfinished(quick_run, held)) == len(expected_runs(config, ["fig2"]))  # one seed's worth

    # A new figure trains only its own runs, not those it shares with finished ones.
    full = with_preset("quick")
    held = members(dry_run("-p", "figures/fig3.pdf", config=full))
    shared = expected_runs(full, ["fig3"]) & (expected_runs(full, ["fig2"]) | expected_runs(full, ["fig4"]))
    assert shared and len(unfinished(quick_run, held)) == len(expected_runs(full, ["fig3"])) - len(shared)


def delete(run_dir: Path) -> None:
    shutil.rmtree(run_dir)


def damage(run_dir: Path) -> None:
    """Cut the last row of metrics.csv after the run ended, so that it no longer has the digest run.json records."""
    metrics = run_dir / "metrics.csv"
    metrics.write_text("".join(metrics.read_text().splitlines(keepends=True)[:-1]))


def bundle_holding(workdir: Path, runs_dir: str, run: str) -> set[str]:
    """The runs of the training job (by its manifest) that holds `run` of `runs_dir`."""
    for manifest in (workdir / "results/bundles").glob("*.json"):
        outs = {entry["out"] for entry in json.loads(manifest.read_text())["runs"]}
        if f"{runs_dir}/{run}" in outs:
            return {out.removeprefix(f"{runs_dir}/") for out in outs}
    raise AssertionError(f"no manifest lists {run}")


@pytest.mark.slow
@pytest.mark.parametrize("harm, runs_dir, run", [
    (delete, "results/runs", "fcn-mnist5k-mse/d4-w128-bs32/agd/seed0"),
    (damage, "results/runs", "fcn-mnist5k-mse/d8-w64-bs128/agd/seed0"),
    (delete, "results/lm_runs", "gpt-python_docs_char/l2-h2-e64-b64/bs32-ga1/agd/seed0"),
])
def test_a_deleted_or_damaged_run_retrains_its_bundle_alone(quick_run, workflow_copy, harm, runs_dir, run):
    targets = [*QUICK_TARGETS, "results/transformer.csv"]

    def dry_run():
        return snakemake(quick_run, "-n", "-p", *targets, config=quick_subset(), repo=workflow_copy)

    runs = quick_run / runs_dir
    before = {path: path.stat().st_mtime_ns for path in (quick_run / "results").rglob("metrics.csv")}
    harm(runs / run)
    harmed = None if harm is delete else (runs / run / "metrics.csv").read_text()

    plan = dry_run()
    jobs = planned(plan)
    assert jobs["set_aside"] == 1 and jobs["train"] == 1, plan.stdout[-3000:]
    assert members(plan, runs_dir) == bundle_holding(quick_run, runs_dir, run)
    result = snakemake(quick_run, "--cores", "2", *targets, config=quick_subset(), repo=workflow_copy)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    assert stale.run_problem(runs / run, (LMRun if runs_dir.endswith("lm_runs") else ImageRun).length) is None
    after = {path: path.stat().st_mtime_ns for path in (quick_run / "results").rglob("metrics.csv")}
    assert {path for path in before if after[path] != before[path]} == {runs / run / "metrics.csv"}
    record = max((quick_run / "results/bundles").glob("*.set-aside-*.txt"), key=lambda path: path.stat().st_mtime)
    assert f"{runs_dir}/{run}" in record.read_text()
    if harmed is not None:  # the damaged run is kept as it was
        assert (record.with_suffix("") / runs_dir / run / "metrics.csv").read_text() == harmed
    assert "Nothing to be done" in dry_run().stdout


@pytest.mark.slow
def test_failed_runs_leave_other_figures_and_partial_figures_name_them(tmp_path):
    # fig1 holds one run that fails in the training job: its ImageNet folders exist but hold no classes.
    root = tmp_path / "imagenet"
    (root / "train").mkdir(parents=True)
    (root / "val").mkdir()
    config = with_preset("quick", imagenet={"enabled": True, "root": str(root)})
    figures = config["presets"]["quick"]["figures"]
    figures["fig1"]["panels"] = {"imagenet": {"arch": "fcn", "dataset": "imagenet", "depth": [2], "width": [8],
                                              "batch_size": [8], "optimizers": {"agd": None}, "epochs": 1}}
    work = tmp_path / "work"
    work.mkdir()
    result = snakemake(work, "--cores", "2", "--keep-going", "figures/fig1.pdf", "figures/fig2.pdf", config=config)
    assert result.returncode != 0
    assert (work / "figures/fig2.png").exists() and not (work / "figures/fig1.png").exists()
    log = next((work / "results/bundles").glob("fcn-imagenet-*.log")).read_text()
    assert "class" in log  # the job's own error message, not a workflow crash

    partial = snakemake(work, "--cores", "1", "--config", "partial=True", "--", "figures/fig1.pdf", config=config)
    assert partial.returncode == 0, partial.stdout[-2000:] + partial.stderr[-2000:]
    table = pd.read_csv(work / "results/fig1.csv")
    assert table["status"].tolist() == ["missing"]
    assert (work / "figures/fig1.png").exists()


@pytest.mark.slow
def test_init_check_trains_epoch_0_of_the_fig3_grid_only(tmp_path):
    config = with_preset("quick")
    config["presets"]["quick"]["figures"]["fig3"]["panels"]["grid"].update(depth=[2, 8], width=[16, 64])
    result = snakemake(tmp_path, "--cores", "2", "results/init_check.csv", config=config)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    table = pd.read_csv(tmp_path / "results/init_check.csv")
    assert len(table) == 4 and (table["status"] == "completed").all()
    assert table["objective"].between(0.9, 1.1).all() and (table["eta"] > 0).all()
    assert table["paper_eta"].isna().all()  # mnist5k: the paper's values are CIFAR-10's
    assert not (tmp_path / "results/runs").exists()  # the figure's runs are untouched
    for run in table["run"]:
        metrics = pd.read_csv(tmp_path / "results/init_runs" / run / "metrics.csv")
        assert metrics["epoch"].tolist() == [0]


# --- the smoke run: the whole paper grid, two steps each, on the CPU ---


@pytest.mark.slow
def test_smoke_run_executes_every_run_of_the_paper_grid(tmp_path):
    """Every run of the paper preset (ImageNet and GPT-2 included) trains two steps on made-up data, in smoke/,
    and every figure and the paper render from those rows."""
    plan = snakemake(tmp_path, "-n", "-p", "--config", "smoke=True")
    runs = members(plan)
    result = snakemake(tmp_path, "--cores", "2", "--config", "smoke=True")
    said = result.stdout + result.stderr
    assert result.returncode == 0, said[-5000:]
    assert "smoke: fig1/imagenet: batch size [1024] -> [32]" in said
    smoke = tmp_path / "smoke"
    assert not (tmp_path / "results").exists(), "the smoke run wrote outside smoke/"
    assert len(runs) > 200 and runs <= set(summary_runs(smoke))
    assert any(run.startswith("resnet50-imagenet") for run in runs)
    assert unfinished(smoke, runs) == set()
    for run in runs:
        record = json.loads((smoke / "results/runs" / run / "run.json").read_text())
        assert record["args"]["synthetic_data"], run
        assert record["steps"] == 2 or record["status"] == "diverged", run  # a rate of 1 may diverge at once
    for figure in [*FIGURES, "peers", "profiles", "sensitivity", "init_ablation", "transformer"]:
        assert (smoke / f"figures/{figure}.pdf").stat().st_size > 0, figure
        assert "preset paper (smoke run: synthetic data" in (smoke / f"figures/{figure}.txt").read_text(), figure
    gpt2 = list((smoke / "results/lm_runs").glob("gpt-openwebtext/*/bs1-ga1/*/seed0/run.json"))
    assert len(gpt2) == 2
    assert (smoke / "paper/main.pdf").stat().st_size > 0
