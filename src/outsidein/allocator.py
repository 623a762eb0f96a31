"""Process start-up: keep the C allocator from multiplying memory across collector threads.

glibc gives each thread that allocates concurrently its own malloc arena (up to 8 per core) and
rarely hands freed arena memory back. The collectors run many reader threads whose responses
(bodies, XML trees) are short-lived, so a 4,500-group read left ~40 MiB of freed-but-held memory
spread over arenas. One arena costs nothing measurable here: the threads wait on the network and
Python's own allocator runs under the GIL anyway.
"""

from __future__ import annotations

import ctypes
import sys

_M_ARENA_MAX = -8  # glibc's mallopt parameter number


def limit_malloc_arenas(count: int = 1) -> bool:
    """Ask glibc for at most ``count`` malloc arenas; False where there is no glibc ``mallopt``."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return bool(mallopt(_M_ARENA_MAX, count))
