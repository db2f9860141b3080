"""The machine a run happened on: every result is printed and saved with it."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import sys

from . import _exec


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith(("model name", "Hardware", "cpu model")):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def memory_bytes() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, OSError, ValueError):
        return None


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def source() -> str | None:
    """The git commit batch was imported from, "+modified" if its files differ from it."""
    import subprocess
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    try:
        head = subprocess.run(["git", "-C", root, "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, timeout=10)
        if head.returncode:
            return None  # an installed copy, not a checkout
        dirty = subprocess.run(["git", "-C", root, "status", "--porcelain",
                                "--untracked-files=no", "--", "batch"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return head.stdout.strip() + ("+modified" if dirty else "")


def describe() -> dict:
    import numpy

    from .. import __version__
    from .._cpus import blas_info, usable_cpus
    return {
        "cpu": cpu_model(),
        "usable_cpus": usable_cpus(),
        "cpu_count": os.cpu_count(),
        "memory_bytes": memory_bytes(),
        "os": platform.platform(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "executable": sys.executable,
        "numpy": numpy.__version__,
        "blas": blas_info(),
        "batch": __version__,
        "batch_source": source(),
        "peers": {name: _version(name) for name in ("joblib", "mpire", "matplotlib")},
        "programs": _exec.versions(),
    }


def summary(machine: dict) -> str:
    """One line: CPU, cores, memory, Python, numpy, BLAS, xargs and GNU parallel."""
    blas = ", ".join(f"{b.get('internal_api')} {b.get('version')}" for b in machine["blas"]) \
        or "no BLAS found"
    mem = machine["memory_bytes"]
    mem = f", {mem / 2**30:.0f} GiB" if mem else ""
    src = f" at {machine['batch_source']}" if machine.get("batch_source") else ""
    programs = "".join(f"; {v}" for v in (machine.get("programs") or {}).values() if v)
    return (f"{machine['cpu']} ({machine['usable_cpus']} usable of {machine['cpu_count']} CPUs"
            f"{mem}), {machine['python']}, numpy {machine['numpy']} ({blas}), {machine['os']}; "
            f"batch {machine['batch']}{src}{programs}")
