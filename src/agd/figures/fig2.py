"""Figure fig2 of the paper: for now the test-accuracy curves of its panels."""

from agd.figures.curves import plot

__all__ = ["plot"]
