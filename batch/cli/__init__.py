"""The `batch` command: the only place that prints for the user or exits.

    batch/cli/
      __init__.py   main(): parse, dispatch, translate errors to one line and an exit status
      _parser.py    the parser; each subcommand adds its own subparser
      _controls.py  options every subcommand shares (-j, --backend, --timeout, --retries,
                    --progress, --joblog, --dry-run) and the Controls they become
      _exits.py     exit statuses (run's and exec's) and the exceptions that lead to them
      _joblog.py    the joblog writer and reader (GNU parallel's columns where shared)
      run/          `batch run`: inputs, built-ins, reducers, outputs, checkpoints
      exec/         `batch exec`: items, ::: sources, output, --halt, --pipe (the engine
                    is batch/_exec, shared with batch.pexec)
      info.py       `batch info`
      bench.py      `batch bench` (the harness is batch/_bench)

Errors are one line, `batch: error: ...`; --debug adds the traceback.
"""

from __future__ import annotations

import os
import sys

from .. import BatchError, WorkerError
from . import _exits, _parser, bench, exec as exec_, info, run
from ._exits import ChunksFailed, OutputFailed, Terminated, UsageError

__all__ = ["main"]


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else [str(a) for a in argv]
    _hold_closed_std_fds()
    parser = _parser.build((run, exec_, info, bench))
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a usage error already printed
        if exc.code == _exits.USAGE:
            return _exits.usage(_subcommand(argv))
        return exc.code if isinstance(exc.code, int) else _exits.USAGE
    debug = getattr(args, "debug", False)
    usage, failed = _exits.usage(args.command), _exits.error(args.command)
    if sys.stdout is None and _prints(args):
        fix = "give --output FILE" if args.func is run.command else "run it with stdout open"
        return _fail(usage, f"stdout is closed, so the result has nowhere to go: "
                     f"{fix}", debug)
    with _exits.sigterm_raises():
        try:
            code = args.func(args)
            _exits.flush_stdout()
            return code
        except UsageError as exc:
            return _fail(usage, str(exc), debug)
        except ChunksFailed as exc:
            for err in exc.failures:
                _say(describe(err))
            return _fail(_exits.FAILED, f"{exc}{_resume_hint(args)}", debug)
        except BatchError as exc:
            return _fail(failed, describe(exc) + _resume_hint(args), debug)
        except KeyboardInterrupt:
            return _fail(_exits.INTERRUPTED, "interrupted" + _resume_hint(args), debug)
        except Terminated:
            return _fail(_exits.TERMINATED, "terminated" + _resume_hint(args), debug)
        except BrokenPipeError:  # `batch run ... | head`: the reader left; say nothing
            _silence_stdout()
            return failed
        except OutputFailed as exc:
            if exc.stdout:  # nothing more can be written there, not even at exit
                _silence_stdout()
            return _fail(failed, str(exc), debug)
        except OSError as exc:
            where = f"{exc.filename}: " if exc.filename else ""
            return _fail(usage, f"{where}{exc.strerror or exc}", debug)
        except Exception as exc:
            return _fail(failed, f"internal error: {type(exc).__name__}: {exc}"
                         + ("" if debug else " (--debug shows where)"), debug)


def _silence_stdout() -> None:
    """/dev/null on fd 1, so the interpreter's own flush at exit finds nowhere to fail."""
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, sys.stdout.fileno())
    os.close(null)


def _hold_closed_std_fds() -> None:
    """Put /dev/null on fd 0, 1 or 2 when the caller closed it (`batch run ... >&-`).

    Otherwise the next pipe or file gets that number, a worker's result pipe can become
    its fd 1, and whatever the mapped function (or a program it starts) prints lands in
    the result. sys.stdout stays None, so a closed stdout is still noticed.
    """
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            got = os.open(os.devnull, os.O_RDWR)
            if got != fd:  # a lower one was closed too and took it: that one stays
                os.dup2(got, fd)
                os.close(got)


def _prints(args) -> bool:
    """Whether the command's result goes to stdout."""
    if args.func is not run.command or getattr(args, "dry_run", False):
        return True
    return args.output in (None, "-") and args.reduce != "none"


def _subcommand(argv) -> str | None:
    """The subcommand named on a command line argparse refused."""
    return next((a for a in argv if not a.startswith("-")), None)


def _say(message: str) -> None:
    print(f"batch: error: {message}", file=sys.stderr, flush=True)


def _fail(code: int, message: str, debug: bool) -> int:
    if debug:
        import traceback  # here: 4-8 ms of `batch exec`'s start-up otherwise
        traceback.print_exc()
    _say(message)
    return code


def describe(err: BaseException) -> str:
    """One line naming the culprit: the chunk, and the item when one item failed."""
    from .run._model import ItemError  # here: `batch exec` never loads batch run's model

    cause = err.__cause__
    if isinstance(err, WorkerError) and isinstance(cause, ItemError):
        items = err.items
        if isinstance(items, range):
            where = f"item {items.start + cause.index}"
        else:
            where = f"item {cause.index} of the chunk"
        return f"chunk {err.chunk}, {where} failed: {cause}"
    return " ".join(str(err).split())


def _resume_hint(args) -> str:
    folder = getattr(args, "checkpoint", None)
    if not folder:
        return ""
    return f"; finished chunks are saved in {folder}: run the same command again to resume"
