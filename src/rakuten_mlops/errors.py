"""The project's own errors: a message that tells the user what to fix.

The CLI prints a `RakutenError` as one line and exits with code 2; anything else (a bug here or
in a library) keeps its traceback. Each subclass also derives from the built-in type callers
already catch (`ValueError`, `FileNotFoundError`), so existing `except` clauses keep working.
"""

from __future__ import annotations


class RakutenError(Exception):
    """An error the user can fix from its message alone (bad input, a missing step, a missing extra)."""


class InvalidInputError(RakutenError, ValueError):
    """Data, parameters or a choice given by the user cannot be used (no valid rows, a bad spec, ...)."""


class MissingInputError(RakutenError, FileNotFoundError):
    """A file or folder a step needs is missing; the message names the step or command that makes it."""
