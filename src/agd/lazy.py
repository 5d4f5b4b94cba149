"""Package attributes imported on first use, so that importing a package does not import torch."""

import importlib
from collections.abc import Callable, Mapping


def lazy_attributes(package: str, sources: Mapping[str, str]) -> Callable[[str], object]:
    """A module-level __getattr__ for `package` that imports each name from its module in `sources`."""

    def __getattr__(name: str):
        if name in sources:
            return getattr(importlib.import_module(sources[name]), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__
