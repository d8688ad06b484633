"""User-facing errors: each message names the problem and how to fix it."""


class CdsynthError(Exception):
    """Base class for errors caused by the user's input, not by a bug."""


class ConfigError(CdsynthError):
    """The configuration is invalid (the message names the field)."""


class DataError(CdsynthError):
    """An input file is missing, empty, corrupt or inconsistent with another."""
