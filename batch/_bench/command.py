"""`batch bench` and `python -m benchmarks`: the same arguments, the same harness.

The CLI registers the subcommand with `configure(subparser)` and calls `run(args)`.
This module imports nothing heavy at the top: numpy, the peers and matplotlib are loaded
only once a run starts, and only where they are needed.
"""

from __future__ import annotations

import argparse
import os
import sys

WORKLOAD_NAMES = ("gil_bound", "numpy_gil_release", "big_input", "tiny_tasks", "executor",
                  "startup", "startup_big", "big_results", "map_blocks", "pipe", "scaling",
                  "exec_true", "exec_echo", "exec_pipe")
IMPLEMENTATION_NAMES = ("serial", "fork", "thread", "mp_pool", "ppe", "ppe_tuned", "joblib",
                        "mpire")


class UsageError(ValueError):
    """A mistake in the arguments: reported in one line before anything runs."""


def configure(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.description = ("Time batch's fork, thread and serial backends against "
                          "multiprocessing.Pool, ProcessPoolExecutor, joblib and mpire, and "
                          "batch exec against xargs -P and GNU parallel, on this machine, "
                          "with peak memory of each whole process tree.")
    parser.add_argument("--quick", action="store_const", const="quick", dest="size",
                        help="small inputs, 3 repetitions: under a minute on 2 cores")
    parser.add_argument("--size", choices=("tiny", "quick", "full"), default="full",
                        help="input sizes (default full: 2 GiB input, about 10 minutes)")
    parser.add_argument("--only", metavar="WORKLOAD[,...]",
                        help=f"workloads to run, of: {', '.join(WORKLOAD_NAMES)}")
    parser.add_argument("--implementations", metavar="NAME[,...]",
                        help=f"implementations to run, of: {', '.join(IMPLEMENTATION_NAMES)}"
                             " (serial is the speedup baseline)")
    parser.add_argument("--workers", type=int, metavar="N",
                        help="workers for every pool (default: the usable CPUs)")
    parser.add_argument("--repeat", type=int, metavar="N",
                        help="timed repetitions per measurement (default 3 quick, 5 full)")
    parser.add_argument("--timeout", type=float, metavar="SECONDS",
                        help="stop a measurement that takes longer (default 60 quick, 180 full)")
    parser.add_argument("--python", action="append", dest="pythons", metavar="PATH",
                        help="run every measurement under this interpreter (repeatable: "
                             "side by side, e.g. a GIL build and a free-threaded one); it "
                             "needs numpy and batch's other dependencies installed; "
                             "default: the one running batch")
    parser.add_argument("--json", metavar="FILE", help="write every figure as JSON")
    parser.add_argument("--markdown", metavar="FILE", help="write the tables as Markdown")
    parser.add_argument("--plot", metavar="FILE.png", help="write a speedup and scaling "
                        "chart (needs matplotlib)")
    parser.add_argument("--no-progress", dest="progress", action="store_false",
                        help="no progress bar")
    return parser


def _names(text: str | None, known: tuple, what: str) -> list[str] | None:
    if text is None:
        return None
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in known]
    if unknown or not names:
        raise UsageError(f"unknown {what} {', '.join(unknown) or repr(text)}; "
                         f"choose from {', '.join(known)}")
    return names


def _check(args) -> dict:
    """Every argument checked before the first measurement, so no run is wasted."""
    for name in ("workers", "repeat"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise UsageError(f"--{name} must be at least 1, got {value}")
    if args.timeout is not None and not args.timeout > 0:
        raise UsageError(f"--timeout must be positive, got {args.timeout}")
    for path in (args.json, args.markdown, args.plot):
        if path and not os.path.isdir(os.path.dirname(os.path.abspath(path))):
            raise UsageError(f"cannot write {path}: its folder does not exist")
    if args.plot:
        import importlib.util
        from ._report import INSTALL_HINT
        if importlib.util.find_spec("matplotlib") is None:
            raise UsageError(INSTALL_HINT)
    return {"size": args.size or "full", "workers": args.workers, "repeat": args.repeat,
            "timeout": args.timeout, "progress": args.progress,
            "pythons": _interpreters(args.pythons),
            "workloads": _names(args.only, WORKLOAD_NAMES, "workload"),
            "implementations": _names(args.implementations, IMPLEMENTATION_NAMES,
                                      "implementation")}


def _interpreters(paths: list[str] | None) -> list[dict] | None:
    """Each --python probed: one that cannot run batch's benchmarks stops the run here."""
    if not paths:
        return None
    from . import _interpreters as interp
    from ._runner import child_env
    infos = []
    for path in paths:
        try:
            info = interp.probe(interp.which(path), env=child_env({}))
        except interp.NotAnInterpreter as exc:
            raise UsageError(f"--python {exc}") from None
        missing = [m for m in ("numpy", "msgpack") if not info["modules"][m]]
        if missing or info["batch_error"]:
            raise UsageError(f"--python {path}: cannot import "
                             f"{', '.join(missing) or info['batch_error']} there; install "
                             f"batch's dependencies into it (pip install -e '.')")
        infos.append(info)
    interp.unique_labels(infos)
    return infos


def run(args: argparse.Namespace) -> int:
    """Run, print the tables, write the files asked for. 0, 1 if a measurement failed."""
    try:
        options = _check(args)
    except UsageError as exc:
        print(f"batch: error: {exc}", file=sys.stderr)
        return 2
    from . import _report, _suite
    try:
        data = _suite.run(**options)
    except KeyboardInterrupt:
        print("batch: interrupted", file=sys.stderr)
        return 130
    sys.stdout.write(_report.table(data))
    try:
        for path, render in ((args.json, _report.to_json), (args.markdown, _report.markdown)):
            if path:
                with open(path, "w") as f:
                    f.write(render(data))
        if args.plot:
            _report.plot(data, args.plot)
    except OSError as exc:
        print(f"batch: error: {exc}", file=sys.stderr)
        return 2
    failed = [r for r in data["rows"] if r.get("error")]
    if failed:
        print(f"batch: error: {len(failed)} measurement(s) failed; see FAILED above",
              file=sys.stderr)
    return 1 if failed else 0


def main(argv=None) -> int:
    """`python -m batch._bench.command`, and what benchmarks/ scripts call."""
    parser = configure(argparse.ArgumentParser(prog="batch bench"))
    return run(parser.parse_args(argv))
