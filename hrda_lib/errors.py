"""The errors a user causes and can fix: a bad value in a config or on a command line, a name
that is in no table. `cli.run` prints their message as one line; any other exception is a bug
of ours and keeps its traceback.

Both are `ValueError`s (and an unknown name a `KeyError`), so code that caught those before
still does.
"""

from __future__ import annotations


class UsageError(ValueError):
    """Bad input on the command line, in a config or in a file; the message says what and what
    to do."""


class UnknownNameError(UsageError, KeyError):
    """A name (preset, row, profile, dataset, method) that its table does not hold."""

    def __str__(self) -> str:  # the message as written, without KeyError's quotes
        return str(self.args[0]) if self.args else ""
