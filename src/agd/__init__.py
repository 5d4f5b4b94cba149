"""Automatic Gradient Descent (arXiv:2304.05187): optimizers, models, data and a resumable training job.

The packages follow the data flow: plan (config -> run specs, torch-free) -> jobs (training runs) built on
the library (optim, models, data, losses) -> tables (aggregation, tuning, numbers; torch-free) -> figures.
"""

from agd.lazy import lazy_attributes

__all__ = ["AGD", "AGDBias"]
__version__ = "0.1.0"
__getattr__ = lazy_attributes(__name__, {"AGD": "agd.optim.agd", "AGDBias": "agd.optim.agd_bias"})
