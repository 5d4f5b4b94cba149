"""The tuning stage: a study's grid runs, read through the same verified records as every table, scored by its
validation rule, and its decision for this round (agd.plan.tuning.decide): the chosen rate, or the rate to add
first.

A round reads exactly the runs its study planned (agd.plan.peers.Study), so rates of other optimizers, cells or
lengths can never mix into a study: every grid run must be there, ended, and hold the planned run (its record's
settings), and all of them must have been trained on the same data (the data part of their identities).
"""

import math
from collections.abc import Mapping
from pathlib import Path

from agd import records
from agd.plan.peers import FIGURE, Study
from agd.plan.table import member
from agd.plan.tuning import decide, split_of, tuning_score
from agd.tables.peer_rows import run_rows


class TuningError(ValueError):
    """A study's grid cannot be judged: a run missing, unfinished, damaged, not the planned run, or on other data."""


def settings_problem(run_dir: Path, recorded: dict, planned: dict) -> str | None:
    differ = sorted(key for key in planned if recorded.get(key) != planned[key])
    if not differ:
        return None
    return (f"{run_dir} holds another run than the one planned ({', '.join(f'{k}={recorded.get(k)!r}' for k in differ)}"
            f" where the study plans {', '.join(f'{k}={planned[k]!r}' for k in differ)}); delete it to train the "
            "planned run")


def judge(study: Study, peers: Mapping, rates: list[float], runs_dir: Path, round_: int,
          partial: bool = False) -> dict:
    """Round `round_` of `study` over its grid so far (`rates`): every rate's score, and the decision. With
    `partial`, rates whose run has not ended are left out and the grid is not extended."""
    runs = {lr: study.grid_run(peers, lr) for lr in rates}
    rows = run_rows([member(run, figure=FIGURE, panel=study.cell, gpus=1, enabled=True) for run in runs.values()],
                    Path(runs_dir))
    scores, absent, data = {}, [], {}
    for lr, run in runs.items():
        run_dir = Path(runs_dir) / run.run_id()
        found = records.inspect(run_dir, run.length)
        if found.status == records.DAMAGED:
            raise TuningError(f"study {study.name}: {found.reason}")
        if found.record is None:
            absent.append(f"{run_dir} ({found.status})")
            continue
        problem = settings_problem(run_dir, found.record["identity"], run.identity())
        if problem:
            raise TuningError(f"study {study.name}: {problem}")
        data[str(run_dir)] = found.record["identity"].get("data")
        scores[lr] = tuning_score(rows[rows["run"] == run.run_id()], study.rule)
    if len({repr(value) for value in data.values()}) > 1:
        raise TuningError(f"study {study.name}: its grid runs were trained on different data, so their scores "
                          "cannot be compared: " + "; ".join(f"{out}: {value}" for out, value in data.items())
                          + ". Delete the runs on the wrong data to train them again")
    if absent and not partial:
        raise TuningError(f"study {study.name}: grid run(s) not ended: {', '.join(absent)}; train them first")
    if not scores:
        raise TuningError(f"study {study.name}: no grid run has ended to judge ({', '.join(absent)})")
    decision = decide(scores, study.bounds, study.extend and not partial)
    return dict(study=study.name, cell=study.cell, optimizer=study.optimizer, round=round_, rule=study.rule,
                split=split_of(study.rule), epochs=study.epochs, initial=list(study.rates), rates=sorted(scores),
                scores={repr(lr): score if math.isfinite(score) else None for lr, score in sorted(scores.items())},
                chosen=decision.chosen, extend=decision.extend, reason=decision.reason, absent=absent)
