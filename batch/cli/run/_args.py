"""`batch run`'s own options; the ones every subcommand shares come from `_controls`."""

from __future__ import annotations

import argparse
import math

from .. import _controls
from .._parser import add_debug
from . import _names as _builtins


def _range(text: str) -> tuple[float, float]:
    parts = text.replace(":", ",").split(",")
    try:
        lo, hi = (float(p) for p in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected LO,HI, got {text!r}") from None
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise argparse.ArgumentTypeError(f"expected finite LO < HI, got {text!r}")
    return lo, hi


def add_parser(sub, func):
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
    what.add_argument("--bins", type=_controls.positive_int, default=10,
                      help="histogram bins (10)")
    what.add_argument("--range", type=_range, metavar="LO,HI",
                      help="histogram range (write --range=-1,1 for a negative LO)")
    what.add_argument("-e", "--pattern", metavar="REGEX", help="what grep looks for")
    what.add_argument("--top", type=_controls.count, default=10, metavar="K",
                      help="wordfreq: the K most frequent words (0: all; default 10)")
    out = run.add_argument_group("output")
    out.add_argument("-o", "--output", metavar="FILE",
                     help="write the result to FILE: .json, .npy, .msgpack or .csv by its "
                          "extension, any other name what stdout would show (- is stdout)")
    out.add_argument("--format", choices=("text", "json"), default="text",
                     help="how to print the result on stdout (or to an --output FILE "
                          "without one of those extensions)")
    ctl = run.add_argument_group("how to run")
    _controls.add(ctl, unit="chunk")
    size = ctl.add_mutually_exclusive_group()
    size.add_argument("--chunks", type=_controls.positive_int, metavar="N",
                      help="cut INPUT into N chunks")
    size.add_argument("--chunk-size", type=_controls.positive_int, metavar="N",
                      help="N items (rows, lines, files) per chunk")
    ctl.add_argument("--keep-going", action="store_true",
                     help="finish every chunk, report all failures, exit 1 if any failed")
    ctl.add_argument("--checkpoint", metavar="DIR",
                     help="save each finished chunk in DIR; the same command again resumes")
    add_debug(run)
    run.set_defaults(func=func)
    return run
