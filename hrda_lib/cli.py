"""What every command line shares: bad input ends in one line that names the argument or file,
what was wrong and what to do, before any work starts; `-v` shows the traceback instead.

    def main(argv=None):
        parser = argparse.ArgumentParser(...)
        ...

    if __name__ == "__main__":
        run(main)
"""

from __future__ import annotations

import argparse
import errno
import sys
from collections.abc import Callable, Sequence

from hrda_lib.checkpoints import CheckpointError
from hrda_lib.errors import UnknownNameError, UsageError
from hrda_lib.files import DiskFullError
from hrda_lib.layout import DatasetLayoutError

__all__ = ["USER_ERRORS", "UnknownNameError", "UsageError", "message", "run"]

# What a user can cause and fix: reported as a message, never as a traceback. A plain
# ValueError or KeyError from inside the library is a bug and keeps its traceback.
USER_ERRORS: tuple[type[BaseException], ...] = (
    UsageError,  # UnknownNameError among them
    CheckpointError,
    DatasetLayoutError,
    DiskFullError,
    FileExistsError,
    PermissionError,
)


def message(error: BaseException) -> str:
    """The text to show for `error`: its message, or for a file that could not be read or
    written, the file and why (without guessing which of the two it was)."""
    if isinstance(error, PermissionError):
        return (
            f"cannot use {error.filename}: permission denied (check that you may read it, or "
            "write to its folder, or choose another path)"
        )
    if isinstance(error, OSError) and error.errno == errno.ENOSPC:
        return f"disk full while writing {error.filename or 'a file'}: free space on its drive"
    if isinstance(error, OSError) and error.filename is not None:
        return f"cannot use {error.filename}: {error.strerror}"
    return str(error)


def run(main: Callable[[list[str] | None], object], argv: Sequence[str] | None = None) -> None:
    """Run a command's `main`; a user error prints `error: <message>` and exits with 2."""
    args = list(sys.argv[1:] if argv is None else argv)
    verbose = "-v" in args or "--verbose" in args
    args = [a for a in args if a not in ("-v", "--verbose")]
    try:
        main(args)
    except KeyboardInterrupt as error:  # Ctrl-C; training says where its checkpoint is
        if verbose:
            raise
        print(f"interrupted{': ' + str(error) if str(error) else ''}", file=sys.stderr)
        sys.exit(130)
    except USER_ERRORS as error:
        if verbose:
            raise
        print(f"error: {message(error)}\n(run with -v for the traceback)", file=sys.stderr)
        sys.exit(2)
    except OSError as error:  # a folder that cannot be created or written, a full disk
        if verbose or error.filename is None and error.errno != errno.ENOSPC:
            raise
        print(f"error: {message(error)}\n(run with -v for the traceback)", file=sys.stderr)
        sys.exit(2)


def positive_int(text: str) -> int:
    """An argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def window(text: str) -> int:
    """An argparse type for window and stride sizes: pixels >= 8."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a whole number of pixels, got {text!r}"
        ) from None
    if value < 8:
        raise argparse.ArgumentTypeError(f"must be at least 8 px, got {value}")
    return value
