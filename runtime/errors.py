"""Errors the runtime raises on purpose."""


class ArtifactError(Exception):
    """The artifact directory is missing, incomplete, altered or of an unknown schema."""


class DtypeMismatchError(ValueError):
    """The caller asked for a dtype other than the one the artifact was exported in."""


class InputError(ValueError):
    """A call's inputs do not match the graph signature; the message names input and expectation."""


class BackendUnavailableError(RuntimeError):
    """The requested backend or precision cannot run this artifact on this machine."""


class RandomWeightsWarning(UserWarning):
    """The artifact was exported from random weights: its outputs mean nothing."""
