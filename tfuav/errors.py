"""User-facing errors: the CLI prints them as one line and exits non-zero."""


class TfuavError(Exception):
    """A problem with the user's input (path, config, model, data), not a bug in tfuav."""
