"""glibc malloc kept from handing large freed blocks back to the OS after every request.

A large tensor passes through several buffers of its size per request (socket reads, the request
body, the answer). glibc serves blocks that large from fresh ``mmap``s, or from the top of the heap
that it trims again as soon as more than twice the last such block lies free, so every request
page-faults its buffers in anew: measured on a [1,3,224,224] FP32 echo over REST binary, page
faults (the kernel zeroing and mapping pages) were ~30% of the server's CPU, and the request cost
0.87-1.0 ms of CPU against 0.23-0.28 ms with this tuning (bench/scenarios.py large).

``tune(cache_size)`` raises the mmap threshold to ``cache_size / 2`` (at most glibc's 32 MiB) and
the trim threshold to ``cache_size``: freed memory up to that size stays mapped for the next request.
The cost is RSS that can stay up to ``cache_size`` above what is live. Not glibc (musl, macOS): no-op.
"""

from __future__ import annotations

import ctypes
import logging
import sys

logger = logging.getLogger("modelport")

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_MMAP_THRESHOLD_MAX = 32 * 1024 * 1024  # glibc's ceiling on 64-bit (mallopt refuses more)


def tune(cache_size: int) -> bool:
    """Apply the thresholds for ``cache_size`` bytes; False where nothing was changed (0, or no glibc)."""
    if cache_size <= 0 or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
        libc.gnu_get_libc_version  # noqa: B018 - present in glibc only; musl's mallopt is a stub
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    mmap_threshold = min(cache_size // 2, _MMAP_THRESHOLD_MAX)
    trim_threshold = min(cache_size, 2**31 - 1)
    ok = mallopt(_M_MMAP_THRESHOLD, mmap_threshold) == 1 and mallopt(_M_TRIM_THRESHOLD, trim_threshold) == 1
    if not ok:  # pragma: no cover - glibc accepts both values above
        logger.warning("malloc tuning (malloc_cache_size=%d) was refused by the C library", cache_size)
    return ok


__all__ = ["tune"]
