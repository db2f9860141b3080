"""The options every subcommand shares, and the Controls they become.

`batch run` and `batch exec` take the same -j, --backend, --scheduler, --timeout, --retries,
--progress, --joblog and --dry-run, with the same meaning, checks and defaults: they are
declared here once. Values are checked as argparse types, so a bad one is a usage error
before any input is opened.
"""

from __future__ import annotations

import argparse
import math
import os
import sys

from .. import _cpus, backends
from ._exits import UsageError


class Controls:
    """What the shared options became. A plain class: `dataclasses` would bring `inspect`
    into every start-up (batch/_exec/_job.py has the figure)."""

    __slots__ = ("workers", "backend", "options", "timeout", "retries", "keep_going",
                 "progress")

    def __init__(self, workers: int, backend: str, options: dict, timeout=None,
                 retries: int = 0, keep_going: bool = False, progress: bool = False):
        self.workers, self.backend, self.options = workers, backend, options
        self.timeout, self.retries = timeout, retries
        self.keep_going, self.progress = keep_going, progress


def whole(text: str, least: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < least:
        raise argparse.ArgumentTypeError(
            f"must be at least 1, got {value}" if least == 1 else f"must be 0 or more, got {value}")
    return value


def positive_int(text: str) -> int:
    return whole(text, 1)


def count(text: str) -> int:
    return whole(text, 0)


def workers(text: str) -> int:
    """N, or N% of the CPUs this process may use (rounded up, at least one)."""
    if text.endswith("%"):
        try:
            percent = float(text[:-1])
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected N or N%, got {text!r}") from None
        if not percent > 0 or math.isinf(percent):
            raise argparse.ArgumentTypeError(f"must be more than 0%, got {text}")
        return max(1, math.ceil(_cpus.usable_cpus() * percent / 100))
    return positive_int(text)


def seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not value > 0 or math.isinf(value):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, got {text}")
    return value


def add(group, *, unit: str = "chunk") -> None:
    """Add the shared options to an argparse group; `unit` names what they apply to."""
    group.add_argument("-j", "--workers", type=workers, metavar="N",
                       help="N workers, or N%% of the usable CPUs (default: all of them)")
    group.add_argument("--backend", choices=backends.NAMES, help=_backend_help())
    group.add_argument("--scheduler", metavar="ADDRESS",
                       help="the Dask scheduler for --backend dask (default: $BATCH_SCHEDULER)")
    group.add_argument("--timeout", type=seconds, metavar="SECONDS", help=f"per {unit}")
    group.add_argument("--retries", type=count, default=0, metavar="N",
                       help=f"run a failed {unit} again up to N times")
    group.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                       help="a progress bar on stderr (default: when stderr is a terminal)")
    group.add_argument("--joblog", metavar="FILE", help=f"one TSV row per {unit}")
    group.add_argument("--dry-run", action="store_true",
                       help=f"print what would run, {unit} by {unit}, and run nothing")
    group.set_defaults(scheduler_env=os.environ.get("BATCH_SCHEDULER"))


def _backend_help() -> str:
    plain, timed = backends.default()[0], backends.default(timeout=1.0)[0]
    return (f"default: {plain} on this interpreter"
            + (f", {timed} with --timeout" if timed != plain else "") + " (batch info says why)")


def from_args(args, *, keep_going: bool = False) -> Controls:
    """Controls from the shared options; every check that can fail runs here, before work."""
    try:
        backend = backends.resolve(args.backend, timeout=args.timeout)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if args.scheduler is not None and backend != "dask":
        raise UsageError("--scheduler is for --backend dask")
    if args.joblog and not os.path.isdir(os.path.dirname(os.path.abspath(args.joblog))):
        raise UsageError(f"--joblog {args.joblog}: no such folder")
    address = args.scheduler or args.scheduler_env
    options = {"address": address} if backend == "dask" and address else {}
    progress = args.progress if args.progress is not None else sys.stderr.isatty()
    return Controls(args.workers or _cpus.usable_cpus(), backend, options, args.timeout,
                    args.retries, keep_going, progress)
