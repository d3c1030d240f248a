"""Errors the library raises for bad input: each carries a one-line message fit for a user."""


class PurifierError(Exception):
    """Base class: a problem with the caller's input, files or settings (never a bug)."""


class CheckpointError(PurifierError):
    """A checkpoint is missing, truncated, corrupt, mismatched or unsafe."""


class DataError(PurifierError):
    """A data set or image file cannot be found, read or verified."""


class SettingsError(PurifierError):
    """A Langevin, training or evaluation setting is out of range."""


class InputError(PurifierError):
    """An input image or array is unusable; ``code`` is a stable machine-readable reason."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class TrainingDiverged(PurifierError):
    """Training diverged and could not be recovered by rolling back to a checkpoint."""
