"""The error planning raises for config.yaml."""


class ConfigError(ValueError):
    """A config.yaml problem, named by its key."""
