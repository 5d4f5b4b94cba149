"""Automatic Gradient Descent (arXiv:2304.05187): optimizers, models, data and a resumable training job."""

__all__ = ["AGD", "AGDBias"]
__version__ = "0.1.0"


def __getattr__(name: str):
    # Lazy, so that torch-free entry points (agd.gpu_lease) start without importing torch.
    if name in __all__:
        from agd import optim

        return getattr(optim, name)
    raise AttributeError(f"module 'agd' has no attribute {name!r}")
