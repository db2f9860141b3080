"""`batch info`: what this machine offers batch, to paste into a bug report."""

from __future__ import annotations

import os
import sys

from .. import __version__, _cpus, _platform, backends
from ._parser import add_debug


def facts() -> dict:
    import platform  # here, as json below: every `batch` command builds this parser
    try:
        affinity = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        affinity = None
    return {
        "batch": __version__,
        "python": f"{platform.python_version()} ({platform.python_implementation()}, "
                  f"{sys.executable})",
        "platform": platform.platform(),
        "fork": _platform.HAS_FORK,
        "usable_cpus": _cpus.usable_cpus(),
        "affinity_cpus": affinity,
        "cgroup_cpu_quota": _cpus.cgroup_quota(),
        "os_cpu_count": os.cpu_count(),
        "interpreter": _interpreter(),
        "default_backend": backends.default()[0],
        "default_backend_why": backends.default()[1],
        "default_backend_with_timeout": backends.default(timeout=1.0)[0],
        "backends": list(backends.NAMES),
        "blas": _cpus.blas_info(),
    }


def _interpreter() -> str:
    """GIL, free-threaded with the GIL off, or free-threaded with the GIL back on."""
    if not _platform.FREE_THREADED_BUILD:
        return "GIL"
    return "free-threaded, GIL " + ("re-enabled by an extension module"
                                    if _platform.gil_enabled() else "off")


def info(args) -> int:
    f = facts()
    if args.format == "json":
        import json
        print(json.dumps(f, indent=2))
        return 0
    quota = f["cgroup_cpu_quota"]
    print(f"batch            {f['batch']}")
    print(f"python           {f['python']}")
    print(f"interpreter      {f['interpreter']}")
    print(f"platform         {f['platform']}")
    print(f"fork available   {'yes' if f['fork'] else 'no'}")
    print(f"usable CPUs      {f['usable_cpus']} (affinity: {f['affinity_cpus'] or 'n/a'}, "
          f"cgroup quota: {'none' if quota is None else f'{quota:g} CPUs'}; "
          f"os.cpu_count: {f['os_cpu_count']})")
    timed = f["default_backend_with_timeout"]
    print(f"default backend  {f['default_backend']}"
          + (f"; {timed} with a timeout" if timed != f["default_backend"] else "")
          + f" (available: {', '.join(f['backends'])})")
    print(f"  because        {f['default_backend_why']}")
    if not f["blas"]:
        print("BLAS             not found (numpy without a threaded BLAS, or threadpoolctl "
              "missing)")
    for lib in f["blas"]:
        extra = f", {lib['threading_layer']} threading" if lib.get("threading_layer") else ""
        print(f"BLAS             {lib.get('internal_api', '?')} {lib.get('version') or ''}, "
              f"{lib.get('num_threads')} threads{extra}")
    return 0


def add_parser(sub):
    p = sub.add_parser("info", help="what this machine offers batch")
    p.add_argument("--format", choices=("text", "json"), default="text")
    add_debug(p)
    p.set_defaults(func=info)
    return p
