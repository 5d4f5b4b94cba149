"""Panels are found by their role, never by their name: config.yaml declares each panel's role once, and renaming
every panel of both presets leaves every claim, number, init-check run and figure as it was."""

import copy
import json
import zlib
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import yaml

from agd import records
from agd.figures import fig1, fig2, showcase
from agd.plan import grid, init_check, roles
from agd.plan.config import validate
from agd.plan.errors import ConfigError
from agd.tables.aggregate import figure_table
from agd.tables.claims import claims_table
from agd.tables.measured import UNTESTABLE
from agd.tables.numbers import numbers_table

REPO = Path(__file__).parents[1]
CONFIG = yaml.safe_load((REPO / "config.yaml").read_text())
CLAIMS = pd.read_csv(REPO / "paper/claims.csv")
REPORTED = pd.read_csv(REPO / "paper/reported_numbers.csv")
# The figures that choose among their panels, drawn twice each. Fig. 3 draws its one panel (the whole table when no
# panel plays its grid) and Fig. 4 one panel per batch size: renaming cannot move what they draw.
DRAWN = {"showcase": showcase, "fig1": fig1, "fig2": fig2}
LOGGED_STEPS = 40  # step rows written for a run that logs steps: enough for Fig. 4's early dip of eta


def config_for(preset: str, rename: bool = False) -> dict:
    config = copy.deepcopy(CONFIG) | {"preset": preset}
    if rename:  # new names, sorting the other way round
        for preset_spec in config["presets"].values():
            for spec in preset_spec["figures"].values():
                panels = spec["panels"].values()
                spec["panels"] = {f"{chr(ord('z') - i)}_renamed": panel for i, panel in enumerate(panels)}
    validate(config)
    return config


def made_up_run(run_dir: Path, run: dict) -> None:
    """A finished run's metrics.csv and run.json, the same made-up numbers for the same run directory."""
    rng = np.random.default_rng(zlib.crc32(run["run"].encode()))
    skill, eta0 = rng.uniform(0.2, 1.0), rng.uniform(0.05, 0.4)
    epochs = run["epochs"]  # every epoch the run asks for, so that each run counts
    rows = [dict(kind="epoch", epoch=e, step=10 * e, train_loss=1.0 - 0.9 * skill * e / epochs,
                 train_acc=0.1 + 0.9 * skill * e / epochs, test_loss=1.0 - 0.8 * skill * e / epochs,
                 test_acc=0.1 + 0.8 * skill * e / epochs * rng.uniform(0.8, 1.0), eta_mean=eta0 * rng.uniform(0.5, 2),
                 eta_min=eta0 / 2, eta_max=eta0 * 3, update_mean=1e-3, update_min=1e-4, update_max=1e-2,
                 lr=run["lr"], time_s=float(e)) for e in range(epochs + 1)]
    if run["log_steps"]:
        rows[1:1] = [dict(rows[1], kind="step", epoch=1, step=s, eta_mean=eta0 * (1 - 0.5 * rng.uniform() * s / 40))
                     for s in range(1, LOGGED_STEPS + 1)]
    run_dir.mkdir(parents=True)
    pd.DataFrame(rows).to_csv(run_dir / "metrics.csv", index=False)
    record = {"status": "completed", "identity": {"run": run["run"]}, "args": {"epochs": run["epochs"]},
              "metrics_sha256": records.file_digest(run_dir / records.METRICS)}
    (run_dir / records.RUN_RECORD).write_text(json.dumps(record))


def fingerprint(fig: plt.Figure) -> list:
    """What a figure draws: per axes its titles, labels, scales, limits, lines, texts and filled areas."""
    drawn = [[t.get_text() for t in fig.texts]]
    for ax in fig.axes:
        drawn.append([ax.get_title(), ax.get_xlabel(), ax.get_ylabel(), ax.get_xscale(), ax.get_yscale(),
                      ax.get_xlim(), ax.get_ylim(), ax.get_visible(), [t.get_text() for t in ax.texts],
                      [(line.get_label(), line.get_color(), line.get_linestyle(), line.get_xydata().tobytes())
                       for line in ax.lines],
                      [[path.vertices.tobytes() for path in c.get_paths()] for c in ax.collections]])
    plt.close(fig)
    return drawn


def everything(config: dict, runs_dir: Path) -> dict:
    """The figure tables, claims, numbers, init-check runs and figures of the config's preset."""
    preset = grid.preset_of(config)
    members = grid.membership(config)
    for run in grid.runs(config).to_dict("records"):
        if run["enabled"] and not (runs_dir / run["run"]).exists():
            made_up_run(runs_dir / run["run"], run)
    tables = {figure: figure_table(members[members["figure"] == figure].to_dict("records"), runs_dir,
                                   config["tuning_rule"])[0] for figure in preset["figures"]}
    context = {"preset": config["preset"], "description": "", "notes": []}
    return {
        "tables": {name: table.drop(columns="panel") for name, table in tables.items()},
        "claims": claims_table(CLAIMS, tables, config["preset"]),
        "numbers": numbers_table(REPORTED, tables, config["preset"]),
        "init_check": sorted(init_check.runs(members, grid.runs(config), preset)["run"]),
        "figures": {name: fingerprint(module.plot(tables[name], context | {"figure": name}))
                    for name, module in DRAWN.items()},
    }


@pytest.mark.parametrize("preset", ["quick", "paper"])
def test_renaming_every_panel_keeps_every_claim_number_and_figure(preset, tmp_path):
    named, renamed = config_for(preset), config_for(preset, rename=True)
    assert not set(named["presets"][preset]["figures"]["fig1"]["panels"]) & set(
        renamed["presets"][preset]["figures"]["fig1"]["panels"])
    before, after = everything(named, tmp_path), everything(renamed, tmp_path)

    testable = before["claims"][before["claims"]["verdict"] != UNTESTABLE]
    assert len(testable) >= 12, before["claims"][["id", "verdict", "reason"]]  # the claims really read the panels
    assert before["numbers"]["reproduced"].notna().sum() >= 12 and len(before["init_check"]) == 30
    pd.testing.assert_frame_equal(before["claims"], after["claims"])
    pd.testing.assert_frame_equal(before["numbers"], after["numbers"])
    assert before["init_check"] == after["init_check"]
    for name, table in before["tables"].items():
        pd.testing.assert_frame_equal(table, after["tables"][name])
    for name, drawn in before["figures"].items():
        assert drawn == after["figures"][name], name


def test_every_panel_of_the_papers_figures_has_its_role_in_both_presets():
    for preset in ("quick", "paper"):
        for figure, spec in CONFIG["presets"][preset]["figures"].items():
            assert sorted(panel["role"] for panel in spec["panels"].values()) == sorted(roles.roles_of(figure))


@pytest.mark.parametrize("role, message", [
    ("grid", "presets.quick.figures.fig1.panels.vgg16.role: 'grid' is not a role of fig1 (its roles: fcn, resnet18, "
             "vgg16, imagenet)"),
    ("resnet18", "presets.quick.figures.fig1: panels resnet18 and vgg16 both have role resnet18"),
])
def test_a_role_the_figure_lacks_or_two_panels_with_one_role_are_refused(role, message):
    config = copy.deepcopy(CONFIG)
    config["presets"]["quick"]["figures"]["fig1"]["panels"]["vgg16"]["role"] = role
    with pytest.raises(ConfigError, match="config.yaml: " + message.replace("(", r"\(").replace(")", r"\)")):
        validate(config)


def test_claims_and_numbers_name_only_roles_that_exist():
    known = {(figure, role) for figure, figure_roles in roles.ROLES.items() for role in figure_roles}
    assert set(zip(REPORTED["figure"], REPORTED["role"])) <= known
