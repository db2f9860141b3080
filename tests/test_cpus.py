"""What the machine offers: usable CPUs and BLAS libraries."""

from __future__ import annotations

import os
import sys
import types

import pytest

from batch import _cpus


def test_usable_cpus_follow_affinity_and_quota(monkeypatch):
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    assert 1 <= _cpus.usable_cpus() <= (affinity or os.cpu_count())
    monkeypatch.setattr(_cpus, "cgroup_quota", lambda: 0.5)
    assert _cpus.usable_cpus() == 1  # half a CPU of quota still runs one worker
    if hasattr(os, "sched_getaffinity"):
        monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3, 4, 5})
        monkeypatch.setattr(_cpus, "cgroup_quota", lambda: 2.5)
        assert _cpus.usable_cpus() == 3


def test_blas_libraries_are_found_again_after_new_imports(monkeypatch):
    pytest.importorskip("threadpoolctl")
    _cpus.prepare_blas()
    first = _cpus._blas
    _cpus.prepare_blas()
    assert _cpus._blas is first  # nothing imported since: no second walk
    monkeypatch.setitem(sys.modules, "batch_test_new_library", types.ModuleType("x"))
    _cpus.prepare_blas()
    assert _cpus._blas is not first
