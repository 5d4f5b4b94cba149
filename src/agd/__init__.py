"""Automatic Gradient Descent (arXiv:2304.05187): optimizers, models, data and a resumable training job."""

from agd.optim import AGD, AGDBias

__all__ = ["AGD", "AGDBias"]
__version__ = "0.1.0"
