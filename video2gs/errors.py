"""Errors a user can act on.

Raising :class:`UserError` anywhere means: print this one line, exit non-zero, no traceback
(``--debug`` shows it). Everything else that escapes is a bug and is reported as one.
"""

from __future__ import annotations


class UserError(Exception):
    """A problem with the user's input, options, files or environment.

    ``exit_code``: 1 for bad input (default); 2 is reserved for command-line usage errors.
    """

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None):
        super().__init__(message)
        self.hint = hint

    def __str__(self) -> str:
        msg = super().__str__()
        return f"{msg} ({self.hint})" if self.hint else msg


class ModelNotFoundError(UserError):
    """A model file is absent and cannot be downloaded (offline, or the user declined)."""


class Interrupted(UserError):
    """Ctrl-C (or SIGTERM) during a run: the message says what was kept; exits 130."""

    exit_code = 130
