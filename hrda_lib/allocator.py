"""glibc malloc settings for training on a CPU: keep freed memory for the next step.

Not part of the method. By default glibc hands large freed blocks back to the kernel, so every
training step faults its activations' pages in again; on the synthetic profile that was 14 % of
a CPU step (`benchmarks/cpu_speed.py`, `kept_freed_memory`). Blocks up to 32 MiB are served
from the heap instead, and up to 1 GiB of free heap is kept; a training process then holds its
peak memory until it ends. PyTorch's CPU performance guide gets the same from tcmalloc or
jemalloc by `LD_PRELOAD`; this needs nothing installed. Elsewhere than glibc it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import platform

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's <malloc.h>
MMAP_THRESHOLD = 32 * 2**20  # bytes: blocks up to this come from the heap (glibc's maximum)
TRIM_THRESHOLD = 2**30  # bytes of free heap kept before any is returned to the kernel


def keep_freed_memory() -> bool:
    """Apply the settings above to this process; whether they took (glibc only)."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return False
    mmap = libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)
    trim = libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    return bool(mmap and trim)
