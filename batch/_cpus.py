"""What the machine offers a run: usable CPUs, and the BLAS threads they share.

Like _platform, each function degrades to a safe answer where the platform lacks the
feature (no affinity, no cgroups, no BLAS threadpoolctl can drive).
"""

from __future__ import annotations

import functools
import math
import os
import sys


def usable_cpus() -> int:
    """The CPUs this process may really use: affinity mask and cgroup CPU quota.

    os.cpu_count() counts the machine's CPUs, which oversubscribes a container limited
    to two of them by a quota.
    """
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        n = os.cpu_count() or 1
    quota = cgroup_quota()  # read once: three file reads per call showed in profiles
    if quota is not None:
        n = min(n, max(1, math.ceil(quota)))
    return max(1, n)


@functools.lru_cache(maxsize=1)
def cgroup_quota() -> float | None:
    try:  # cgroup v2: "max 100000" or "200000 100000"
        with open("/sys/fs/cgroup/cpu.max") as f:
            quota, period = f.read().split()[:2]
        if quota != "max":
            return int(quota) / int(period)
        return None
    except (OSError, ValueError):
        pass
    try:  # cgroup v1
        with open("/sys/fs/cgroup/cpu/cpu.cfs_quota_us") as f:
            quota = int(f.read())
        with open("/sys/fs/cgroup/cpu/cpu.cfs_period_us") as f:
            period = int(f.read())
        if quota > 0 and period > 0:
            return quota / period
    except (OSError, ValueError):
        pass
    return None


# --- BLAS threads ---------------------------------------------------------------------

_blas = None
_modules_seen = 0  # len(sys.modules) when the libraries were last found


def prepare_blas() -> None:
    """Find the BLAS/OpenMP libraries loaded in this process (threadpoolctl).

    Walking the loaded libraries costs about 3 ms, and importing threadpoolctl 2 ms: a
    third of a first pmap, so `import batch` does it once, with numpy's BLAS loaded. A
    library loaded later (torch, scikit-learn's OpenMP) arrives with an import, so the
    walk is redone when sys.modules has grown since, and only then.
    """
    global _blas, _modules_seen
    if _blas is not None and len(sys.modules) == _modules_seen:
        return
    _modules_seen = len(sys.modules)
    try:
        from threadpoolctl import ThreadpoolController
        _blas = ThreadpoolController()
    except Exception:  # not installed, or a library it cannot drive
        _blas = False
    _modules_seen = len(sys.modules)


def limit_blas_threads(n: int):
    """Cap BLAS/OpenMP threads at `n`; returns a function that puts the old caps back.

    N workers with N BLAS threads each would run N*N threads on N cores. The coordinator
    sets the cap for the length of a run and its workers inherit it: setting it inside
    each worker cost 2.4 ms per fork (OpenBLAS rebuilds its thread pool after a fork),
    in the coordinator 2 microseconds. BLAS calls the caller's other threads make during
    the run see the cap too.
    """
    changed = []
    for lib in (_blas.lib_controllers if _blas else ()):
        try:
            old = lib.num_threads
            if old > n:
                lib.set_num_threads(max(1, n))
                changed.append((lib, old))
        except Exception:  # a library that cannot be driven: leave it alone
            pass

    def restore():
        for lib, old in changed:
            try:
                lib.set_num_threads(old)
            except Exception:
                pass

    return restore


def blas_info() -> list[dict]:
    """The BLAS libraries numpy loads. threadpoolctl sees only what is loaded, and the
    CLI imports numpy lazily (`batch exec` never needs it), so numpy is imported here
    first: without it `batch info` said "not found" beside numpy's own OpenBLAS."""
    try:
        import numpy  # noqa: F401
    except ImportError:
        pass
    prepare_blas()
    if not _blas:
        return []
    return [{k: v for k, v in lib.items() if k in ("internal_api", "version", "num_threads",
                                                    "threading_layer")}
            for lib in _blas.info()]
