"""Keep memory that a training step frees for the next step (glibc's allocator).

A training step allocates and frees the same activation buffers every iteration. glibc's
``malloc`` gives large freed blocks back to the system (``munmap`` of blocks above its mmap
threshold, trimming of the heap's top above its trim threshold), and the next step faults the
pages back in, each one zeroed by the kernel. On a CPU that is thousands of page faults per step
for a DCGAN at 32x32 (``benchmarks/overhead.py`` reports them per step; docs/benchmarks.md).

:func:`keep_freed_memory` raises both thresholds with ``mallopt``, so freed blocks stay in the
process and are reused: blocks up to 32 MiB (the largest mmap threshold ``mallopt`` accepts on
64-bit) come from the heap, and the heap is trimmed only above 1 GiB of free memory at its top.
The setting is process-wide and stays after training. Elsewhere than glibc (macOS, musl, Windows)
it does nothing. CUDA memory has its own caching allocator and is not affected.
"""

from __future__ import annotations

import ctypes
import platform

M_TRIM_THRESHOLD = -1  # <malloc.h>
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 * 1024 * 1024  # glibc's DEFAULT_MMAP_THRESHOLD_MAX on 64-bit
TRIM_THRESHOLD = 1024 * 1024 * 1024

_applied = False


def keep_freed_memory() -> bool:
    """Set glibc's mmap and trim thresholds as above; ``True`` when they are in effect (now or
    from an earlier call), ``False`` when this is not glibc or ``mallopt`` refused."""
    global _applied
    if _applied:
        return True
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the process's own symbols: libc's, on glibc
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    # mallopt returns 1 on success. The mmap threshold first: setting either turns off glibc's
    # dynamic thresholds, and the trim threshold alone would leave every block above the
    # default 128 KiB to mmap.
    _applied = bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
        mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    )
    return _applied
