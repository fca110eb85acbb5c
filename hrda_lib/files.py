"""Writing files so that an interrupted or failing write never leaves a half-written file: the
content goes to a hidden temporary file in the same folder, which is then renamed over the
target (atomic on one file system). A full disk names itself and leaves nothing behind."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path


class DiskFullError(OSError):
    """No space left on the device holding the file; nothing was written."""


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to `path` via a hidden temporary file in the same folder and a rename."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except OSError as error:
        if error.errno == errno.ENOSPC:
            raise DiskFullError(
                errno.ENOSPC, f"disk full while writing {path}: free space on its drive"
            ) from None
        raise
    finally:
        if tmp.exists():
            tmp.unlink()


def write_text(path: Path, text: str) -> Path:
    """Atomically write a text file (Markdown, CSV); returns the path."""
    atomic_write_bytes(Path(path), text.encode())
    return Path(path)


def write_json(path: Path, obj: object, indent: int = 2) -> Path:
    """Atomically write `obj` as JSON (non-JSON values as their `str`); returns the path."""
    return write_text(path, json.dumps(obj, indent=indent, default=str))
