"""The one check of a number given on a command line or in config.yaml: finite, within float32 where the value
reaches a tensor, and within the bounds its setting declares. Both training jobs, the bundle, the lease tool
and the planner call it, so one value is refused by all of them with the same words. Imports no torch."""

import math
from dataclasses import dataclass

# The largest finite float32: a setting that reaches a tensor (a rate, a gain) must fit in one.
FLOAT32_MAX = 3.4028234663852886e38


@dataclass(frozen=True)
class Bounds:
    """Where a number may lie: at least `minimum`, above `above`, below `below`, at most `maximum` (each
    optional)."""

    minimum: float | None = None
    above: float | None = None
    below: float | None = None
    why: str = ""  # said after the rule, e.g. "an FCN needs an input and an output layer"
    maximum: float | None = None

    def rule(self) -> str:
        parts = []
        if self.minimum is not None:
            parts.append(f"at least {self.minimum:g}")
        if self.above is not None:
            parts.append(f"above {self.above:g}")
        if self.below is not None:
            parts.append(f"below {self.below:g}")
        if self.maximum is not None:
            parts.append(f"at most {self.maximum:g}")
        return " and ".join(parts)


def number_problem(flag: str, value, bounds: Bounds = Bounds(), *, tensor: bool = True) -> str | None:
    """What is wrong with `value` given as `flag`, or None. Floats must be finite (and, with `tensor`, fit in
    float32); both kinds must keep the bounds. An unset setting (None) and a switch (bool) have nothing to check."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, float):
        if not math.isfinite(value):
            return f"{flag} {value}: must be a finite number"
        if tensor and abs(value) > FLOAT32_MAX:
            return f"{flag} {value}: beyond float32's range (about 3.4e38), where the run computes; use a smaller value"
    outside = ((bounds.minimum is not None and value < bounds.minimum)
               or (bounds.above is not None and value <= bounds.above)
               or (bounds.below is not None and value >= bounds.below)
               or (bounds.maximum is not None and value > bounds.maximum))
    if outside:
        why = f" ({bounds.why})" if bounds.why else ""
        return f"{flag} {value}: must be {bounds.rule()}{why}"
    return None


POSITIVE = Bounds(above=0)
AT_LEAST_ONE = Bounds(minimum=1)
NOT_NEGATIVE = Bounds(minimum=0)
# Job slots per GPU (agd-gpu-lease --slots-per-gpu, config.yaml's jobs_per_gpu): each is a lock file the lease
# holds open, so a whole-GPU lease of K GPUs holds K times this many descriptors.
SLOTS_PER_GPU = Bounds(minimum=1, maximum=64, why="each slot is a lock file held open; more jobs than that on "
                                                  "one GPU would only wait on each other")
