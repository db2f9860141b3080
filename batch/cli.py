"""The `batch` command. The only module that prints for the user or exits."""

from __future__ import annotations

import argparse
import operator
import sys

import numpy as np

from . import BatchError, __version__, _data, _platform, map_reduce


def _moments(chunk: np.ndarray):
    return np.array([chunk.size, chunk.sum(), np.square(chunk).sum(), chunk.min(), chunk.max()])


def _merge(a, b):
    return np.array([a[0] + b[0], a[1] + b[1], a[2] + b[2], min(a[3], b[3]), max(a[4], b[4])])


def _run(args) -> int:
    path = args.input or _data.sample("numbers.npy")
    data = np.load(path, mmap_mode="r")
    n, s, sq, lo, hi = map_reduce(_moments, _merge, data, workers=args.workers,
                                  backend=args.backend)
    mean = s / n
    print(f"{path}: count={int(n)} mean={mean:.6g} std={np.sqrt(max(sq / n - mean ** 2, 0)):.6g} "
          f"min={lo:.6g} max={hi:.6g}")
    return 0


def _info(args) -> int:
    print(f"batch {__version__}")
    print(f"python {sys.version.split()[0]} on {sys.platform}")
    print(f"fork available: {_platform.HAS_FORK}; default backend: {_platform.default_backend()}")
    print(f"usable CPUs: {_platform.usable_cpus()} (os.cpu_count: {__import__('os').cpu_count()})")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="batch", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="statistics of a .npy file (default: the sample data)")
    run.add_argument("input", nargs="?")
    run.add_argument("--workers", type=int)
    run.add_argument("--backend", choices=["fork", "thread", "serial"])
    run.set_defaults(func=_run)
    info = sub.add_parser("info", help="what this machine offers batch")
    info.set_defaults(func=_info)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (BatchError, OSError, ValueError) as exc:
        print(f"batch: error: {exc}", file=sys.stderr)
        return 2 if not isinstance(exc, BatchError) else 1
    except KeyboardInterrupt:
        return 130
