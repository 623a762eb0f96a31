"""Memory behaviour of the process: the C allocator's arenas, and pauses of Python's cyclic GC.

glibc gives each thread that allocates concurrently its own malloc arena (up to 8 per core) and
rarely hands freed arena memory back. The collectors run many reader threads whose responses
(bodies, XML trees) are short-lived, so a 4,500-group read left ~40 MiB of freed-but-held memory
spread over arenas. One arena costs nothing measurable here: the threads wait on the network and
Python's own allocator runs under the GIL anyway.
"""

from __future__ import annotations

import ctypes
import gc
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

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


_gc_pauses = 0
_gc_was_enabled = False
_gc_lock = threading.Lock()


@contextmanager
def cyclic_gc_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while a burst of long-lived objects is built.

    Parsing 50,000 security-group rules or evaluating them allocates hundreds of thousands of dicts
    that all survive; each automatic collection walks the whole (growing) heap for nothing. Objects
    are still freed by reference counting; the collector resumes when the last pause ends (pauses
    nest and may overlap across threads).
    """
    global _gc_pauses, _gc_was_enabled
    with _gc_lock:
        if _gc_pauses == 0:
            _gc_was_enabled = gc.isenabled()
            gc.disable()
        _gc_pauses += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_pauses -= 1
            if _gc_pauses == 0 and _gc_was_enabled:
                gc.enable()
