"""`batch run`: check everything, plan the chunks, run them, write the result.

Every check that can fail on the user's input (the input itself, --map and --reduce,
--output's format and folder, --checkpoint's folder, the backend) runs before the first
worker starts, so a mistake costs nothing and leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
import tempfile

import numpy as np

from .. import _controls, _joblog
from .._controls import Controls
from .._exits import UsageError
from . import _block_output, _builtins, _inputs, _job
from ._checkpoint import Checkpoint
from ._execute import execute
from ._model import Result
from ._outputs import Target


def run(args) -> int:
    sample = args.input is None and not args.null
    inp = _inputs.open_input(args, _job.sample_kind(args.map))
    args.map = args.map or _job.DEFAULT_MAP[inp.kind]
    target = Target(args)
    if args.reduce == "none" and args.output:
        raise UsageError("--reduce none keeps no result: there is nothing to --output")
    ctl = _controls.from_args(args, keep_going=args.keep_going)
    natural_sort = args.map == "sort" and args.reduce is None
    with _runs_folder(natural_sort, args.checkpoint) as runs_dir:
        mapper, reducer = _job.build(args, inp.kind, runs_dir)

        def make_plan():
            return inp.plan(ctl.workers, args.chunks, args.chunk_size,
                            fixed=args.checkpoint is not None)

        checkpoint = None
        if args.checkpoint is not None:
            explicit = args.chunks is not None or args.chunk_size is not None
            checkpoint = Checkpoint(args.checkpoint, _identity(args, inp), make_plan, explicit,
                                    create=not args.dry_run)
            if natural_sort and not args.dry_run:
                checkpoint.runs_dir()
        plan = checkpoint.plan if checkpoint is not None else make_plan()
        if args.dry_run:
            _print_plan(inp, plan, mapper, reducer, ctl, checkpoint)
            return 0
        if sample:
            print(f"batch: no INPUT given: running --map {args.map} on the sample data "
                  f"{args.input}", file=sys.stderr)
        if args.map == "histogram":
            args.histogram_range = _histogram_range(args, inp, plan, ctl)
        if _block_output.written(args, inp, mapper, ctl):
            return 0  # map_blocks wrote the .npy (a user function of an array's rows)
        joblog = _joblog.JobLog(args.joblog, _joblog.RUN) if args.joblog else None
        try:
            result = execute(inp, plan, mapper, reducer, ctl, checkpoint=checkpoint,
                             joblog=joblog)
        except Exception:
            _check_unchanged(inp)  # a file changed midway explains a failure best
            raise
        finally:
            if joblog is not None:
                joblog.close()
        _check_unchanged(inp)
        target.write(result if isinstance(result, Result) else Result(result))
    return 0


def _check_unchanged(inp) -> None:
    watch = getattr(inp, "watch", None)
    if watch is not None:
        watch.check()


@contextlib.contextmanager
def _runs_folder(needed: bool, checkpoint):
    """Where sort's workers write their runs: the checkpoint (kept), or a temporary folder."""
    if not needed:
        yield None
    elif checkpoint is not None:
        # Absolute: the partials name their runs, and a rerun may start elsewhere.
        yield os.path.abspath(os.path.join(checkpoint, "runs"))  # made once checked
    else:
        with tempfile.TemporaryDirectory(prefix="batch-sort-") as folder:
            yield folder


def _identity(args, inp) -> dict:
    return {"input": inp.identity(), "map": args.map, "reduce": args.reduce,
            "options": {"key": args.key, "bins": args.bins, "range": args.range,
                        "pattern": args.pattern, "top": args.top}}


def _histogram_range(args, inp, plan, ctl):
    """(lo, hi, dtype) for the bins: --range, or a first pass of min and max."""
    dtype = inp.array.dtype if inp.kind == "array" else np.float64
    if args.range is not None:
        return (*args.range, dtype)
    if inp.kind == "lines" and inp.total is None and getattr(inp, "once", False):
        raise UsageError(f"--map histogram of {'stdin' if inp.path == '-' else 'a pipe'} "
                         f"needs --range LO,HI: it can be read only once, and the range "
                         f"needs a pass of its own")
    mapper = _builtins.range_mapper(inp.kind)
    pass_ctl = Controls(ctl.workers, ctl.backend, ctl.options, ctl.timeout, ctl.retries,
                        False, ctl.progress)
    lo, hi = execute(inp, plan, mapper, mapper.natural, pass_ctl, desc="range")
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise UsageError(f"--map histogram: the data reach {lo} .. {hi}; give a finite "
                         f"--range LO,HI")
    return lo, hi, dtype if inp.kind == "array" else np.result_type(lo, hi)


def _print_plan(inp, plan, mapper, reducer, ctl, checkpoint) -> None:
    done = checkpoint.finished() if checkpoint is not None else set()
    print(f"input    {inp.label}")
    print(f"job      --map {mapper.name} --reduce {reducer.name}")
    print(f"run      {ctl.workers} workers, {ctl.backend} backend"
          + (f", timeout {ctl.timeout:g} s" if ctl.timeout else "")
          + (f", {ctl.retries} retries" if ctl.retries else ""))
    if isinstance(plan, dict):
        size = plan["chunk_size"]
        print("chunks   read as the input arrives, "
              + (f"at most {plan['chunks']} of about {plan['bytes'] / plan['chunks']:.0f} "
                 f"bytes each" if plan.get("chunks") else
                 f"{size} lines each" if size else "sized to about 50 ms of work each")
              + (f"; {len(done)} saved in the checkpoint" if done else ""))
        return
    print(f"chunks   {len(plan)}" + (f" ({len(done)} saved in the checkpoint)" if done else ""))
    print("chunk\titems\twhere")
    for i, span in enumerate(plan):
        items = span[1] - span[0] if inp.total is not None else "?"
        print(f"{i}\t{items}\t{inp.describe(span)}" + ("\tsaved" if i in done else ""))
