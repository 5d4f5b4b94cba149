"""The tuning stage: a study's grid runs, read through the same checks as every table, scored by its validation
rule, and its decision for this round (agd.plan.tuning.decide): the chosen rate, or the rate to add first.

A round reads exactly the runs its study planned (agd.plan.peers.Study): every grid run must be there and be the
planned run (its record's identity), so rates of other optimizers, cells or lengths can never mix into a study.
"""

import json
import math
from collections.abc import Mapping
from pathlib import Path

from agd.plan.peers import Study
from agd.plan.table import member
from agd.plan.tuning import decide, split_of, tuning_score
from agd.tables.aggregate import figure_rows
from agd.tables.selection import ABSENT


class TuningError(ValueError):
    """A study's grid cannot be judged: a run missing, unfinished, or not the planned run."""


def recorded_identity(run_dir: Path) -> dict | None:
    record = Path(run_dir) / "run.json"
    if not record.exists():
        return None
    return json.loads(record.read_text()).get("identity")


def judge(study: Study, peers: Mapping, rates: list[float], runs_dir: Path, round_: int,
          partial: bool = False) -> dict:
    """Round `round_` of `study` over its grid so far (`rates`): every rate's score, and the decision. With
    `partial`, rates whose run is not there are left out and the grid is not extended."""
    runs = {lr: study.grid_run(peers, lr) for lr in rates}
    members = [member(run, figure="peers", panel=study.cell, gpus=1, enabled=True) for run in runs.values()]
    rows = figure_rows(members, Path(runs_dir))
    scores, absent = {}, []
    for lr, run in runs.items():
        run_rows = rows[rows["run"] == run.run_id()]
        status = run_rows["status"].iloc[0]
        if status in ABSENT or status == "running":
            absent.append(f"{run.run_id()} ({status})")
            continue
        recorded = recorded_identity(Path(runs_dir) / run.run_id())
        if recorded is not None and recorded != run.identity():
            changed = sorted(k for k in set(recorded) | set(run.identity()) if recorded.get(k) != run.identity().get(k))
            raise TuningError(f"study {study.name}: {Path(runs_dir) / run.run_id()} holds another run than the one "
                              f"planned (its {', '.join(changed)} differ); delete it to train the planned run")
        scores[lr] = tuning_score(run_rows, study.rule)
    if absent and not partial:
        raise TuningError(f"study {study.name}: grid run(s) not finished: {', '.join(absent)}; train them first")
    if not scores:
        raise TuningError(f"study {study.name}: no grid run is there to judge ({', '.join(absent)})")
    decision = decide(scores, study.bounds, study.extend and not partial)
    return dict(study=study.name, cell=study.cell, optimizer=study.optimizer, round=round_, rule=study.rule,
                split=split_of(study.rule), epochs=study.epochs, initial=list(study.rates), rates=sorted(scores),
                scores={repr(lr): score if math.isfinite(score) else None for lr, score in sorted(scores.items())},
                chosen=decision.chosen, extend=decision.extend, reason=decision.reason, absent=absent)


def rates_of_round(study: Study, earlier: list[Mapping]) -> list[float]:
    """The grid of a study's next round: its initial rates and every extension its earlier rounds asked for."""
    return sorted({*study.rates, *(decision["extend"] for decision in earlier if decision["extend"] is not None)})
