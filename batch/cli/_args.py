"""The command line: `batch run`, `batch info` and, when its module is there, `batch bench`.

Values are checked here, as argparse types, so that a bad one is a usage error (exit 2)
before any input is opened. The parser prints one line per error, not argparse's usage
block: scripts grep stderr, and the usage is one `--help` away.
"""

from __future__ import annotations

import argparse
import math
import os

from .. import __version__, _cpus, backends
from . import _builtins


class Parser(argparse.ArgumentParser):
    def error(self, message):
        self.exit(2, f"batch: error: {message} (see '{self.prog} --help')\n")


def _whole(text: str, least: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < least:
        raise argparse.ArgumentTypeError(
            f"must be at least 1, got {value}" if least == 1 else f"must be 0 or more, got {value}")
    return value


def _positive_int(text: str) -> int:
    return _whole(text, 1)


def _count(text: str) -> int:
    return _whole(text, 0)


def _workers(text: str) -> int:
    """N, or N% of the CPUs this process may use (rounded up, at least one)."""
    if text.endswith("%"):
        try:
            percent = float(text[:-1])
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected N or N%, got {text!r}") from None
        if not percent > 0 or math.isinf(percent):
            raise argparse.ArgumentTypeError(f"must be more than 0%, got {text}")
        return max(1, math.ceil(_cpus.usable_cpus() * percent / 100))
    return _positive_int(text)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not value > 0 or math.isinf(value):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, got {text}")
    return value


def _range(text: str) -> tuple[float, float]:
    parts = text.replace(":", ",").split(",")
    try:
        lo, hi = (float(p) for p in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected LO,HI, got {text!r}") from None
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise argparse.ArgumentTypeError(f"expected finite LO < HI, got {text!r}")
    return lo, hi


def _backend_help() -> str:
    plain, timed = backends.default()[0], backends.default(timeout=1.0)[0]
    return (f"default: {plain} on this interpreter"
            + (f", {timed} with --timeout" if timed != plain else "") + " (batch info says why)")


def build(commands: dict) -> Parser:
    """The parser; `commands` maps a subcommand name to the function that runs it."""
    parser = Parser(prog="batch", description="Parallel map-reduce over arrays, lines and "
                    "files, on every core.")
    parser.add_argument("--version", action="version", version=f"batch {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _run_parser(sub).set_defaults(func=commands["run"])
    info = sub.add_parser("info", help="what this machine offers batch")
    info.add_argument("--format", choices=("text", "json"), default="text")
    _debug(info)
    info.set_defaults(func=commands["info"])
    bench = _bench_module()
    if bench is not None:
        p = sub.add_parser("bench", help="measure fork, threads and serial on this machine")
        bench.configure(p)
        _debug(p)
        p.set_defaults(func=bench.run)
    return parser


def _bench_module():
    try:
        from .._bench import command
    except ImportError:  # not written yet, or an optional dependency missing: no subcommand
        return None
    return command


def _debug(p) -> None:
    # SUPPRESS: the subcommand's default must not overwrite `batch --debug run`.
    p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                   help="show tracebacks")


def _run_parser(sub):
    run = sub.add_parser(
        "run", help="map (and reduce) a function over an array, lines or files",
        description="Map a function over the chunks of INPUT on every core and reduce the "
        "results. INPUT: a .npy/.npz array, a text file (.gz too), - for stdin, a folder or a "
        "quoted glob of files; none: the sample data shipped with batch.")
    run.add_argument("input", nargs="?", metavar="INPUT")
    what = run.add_argument_group("what to compute")
    what.add_argument("-m", "--map", metavar="M",
                      help=f"arrays: {' '.join(_builtins.ARRAY_MAPPERS)}; text: "
                           f"{' '.join(_builtins.TEXT_MAPPERS)}; files: "
                           f"{' '.join(_builtins.FILE_MAPPERS)}; or module:function, "
                           f"path/file.py:function (default: stats for arrays, lines for "
                           f"text, size for files)")
    what.add_argument("-r", "--reduce", metavar="R",
                      help="sum, concat, merge, min, max, none, or module:function "
                           "(default: the mapper's own)")
    what.add_argument("--key", help="the array to read from a .npz")
    what.add_argument("-0", "--null", action="store_true",
                      help="read NUL-separated file names from stdin (find -print0)")
    what.add_argument("--bins", type=_positive_int, default=10, help="histogram bins (10)")
    what.add_argument("--range", type=_range, metavar="LO,HI",
                      help="histogram range (write --range=-1,1 for a negative LO)")
    what.add_argument("-e", "--pattern", metavar="REGEX", help="what grep looks for")
    what.add_argument("--top", type=_count, default=10, metavar="K",
                      help="wordfreq: the K most frequent words (0: all; default 10)")
    out = run.add_argument_group("output")
    out.add_argument("-o", "--output", metavar="FILE",
                     help="write the result to FILE.json, .npy, .msgpack or .csv")
    out.add_argument("--format", choices=("text", "json"), default="text",
                     help="how to print the result on stdout")
    ctl = run.add_argument_group("how to run")
    ctl.add_argument("-j", "--workers", type=_workers, metavar="N",
                     help="N workers, or N%% of the usable CPUs (default: all of them)")
    size = ctl.add_mutually_exclusive_group()
    size.add_argument("--chunks", type=_positive_int, metavar="N", help="cut INPUT into N chunks")
    size.add_argument("--chunk-size", type=_positive_int, metavar="N",
                      help="N items (rows, lines, files) per chunk")
    ctl.add_argument("--backend", choices=backends.NAMES,
                     help=_backend_help())
    ctl.add_argument("--scheduler", metavar="ADDRESS",
                     help="the Dask scheduler for --backend dask (default: $BATCH_SCHEDULER)")
    ctl.add_argument("--timeout", type=_seconds, metavar="SECONDS", help="per chunk")
    ctl.add_argument("--retries", type=_count, default=0, metavar="N",
                     help="run a failed chunk again up to N times")
    ctl.add_argument("--keep-going", action="store_true",
                     help="finish every chunk, report all failures, exit 1 if any failed")
    ctl.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                     help="a progress bar on stderr (default: when stderr is a terminal)")
    ctl.add_argument("--joblog", metavar="FILE", help="one TSV row per chunk")
    ctl.add_argument("--checkpoint", metavar="DIR",
                     help="save each finished chunk in DIR; the same command again resumes")
    ctl.add_argument("--dry-run", action="store_true", help="print the chunk plan and exit")
    _debug(run)
    run.set_defaults(scheduler_env=os.environ.get("BATCH_SCHEDULER"))
    return run
