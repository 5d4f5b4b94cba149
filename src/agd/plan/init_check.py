"""The init check's runs: every cell of the preset's Fig. 3 grid trained for epoch 0 only (the pass at
initialisation: loss, accuracy and AGD's eta on every training batch, no update), in a runs directory of
their own so that they never touch the figure's runs. On a GPU the paper grid's 30 cells take minutes.
"""

from pathlib import Path

import pandas as pd

from agd.plan import bundles, roles

FIGURE, ROLE = "fig3", "grid"  # the panel of Fig. 3 that plays its grid (agd.plan.roles)
RUNS_DIR = "results/init_runs"
BUNDLES_DIR = f"{RUNS_DIR}/bundles"


def runs_dir_of(manifests: list[str]) -> str:
    """The runs directory of the init check's bundles, read from where their manifests are (BUNDLES_DIR is
    RUNS_DIR/bundles), which a storage provider may have moved; RUNS_DIR when there are none."""
    return str(Path(manifests[0]).parents[1]) if manifests else RUNS_DIR


def runs(members: pd.DataFrame, run_table: pd.DataFrame, preset: dict) -> pd.DataFrame:
    """The Fig. 3 grid's runs (rows of `run_table`), each for 0 epochs, logging no steps, with its bundle."""
    if members.empty:
        return run_table.iloc[0:0].assign(bundle=pd.Series(dtype=object))
    wanted = members[(members["figure"] == FIGURE) & (members[roles.COLUMN] == ROLE)]["run"].unique()
    grid = run_table[run_table["run"].isin(wanted) & run_table["enabled"]].drop(columns="bundle", errors="ignore")
    grid = grid.reset_index(drop=True)
    grid = grid.assign(epochs=0, log_steps=0)
    if grid.empty:
        return grid.assign(bundle=pd.Series(dtype=object))
    return grid.assign(bundle=bundles.assign(grid.assign(figures="init"), int(preset["bundle_size"]),
                                             float(preset["bundle_minutes"])))
