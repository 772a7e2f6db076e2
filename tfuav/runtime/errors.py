"""Errors of the runtime: a problem with the user's input or machine, reported as one line."""


class InferenceError(Exception):
    """A user-facing problem (missing model or source, unreadable file, missing library);
    front ends print it as one line and exit with status 2."""


class EdgeTpuUnavailableError(InferenceError):
    """The Edge TPU delegate library (libedgetpu) cannot be loaded."""
