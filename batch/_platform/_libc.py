"""The C library through ctypes, for what the os module does not offer: prctl, mallopt,
madvise, process_vm_readv/writev.

One handle for the whole package, loaded in the coordinator (prepare_fork) so that every
worker inherits it instead of loading it again: what runs in a worker asks `loaded()`.
"""

from __future__ import annotations

import ctypes
import os

_libc = None  # None: not loaded yet; False: not available


def load():
    """libc, loaded on first use; None where there is none to load (not Linux)."""
    global _libc
    if _libc is None and hasattr(os, "sched_getaffinity"):
        try:
            _libc = ctypes.CDLL(None, use_errno=True)
        except OSError:
            _libc = False
    return _libc or None


def loaded():
    """libc if `load()` has loaded it, else None: never loads it."""
    return _libc or None
