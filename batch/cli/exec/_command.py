"""`batch exec`: check everything, make the jobs, run them, print, log, exit.

Every check that can fail on the user's input (the options, --halt, --workdir, the
item files, the joblog for --resume, and the program itself when it is fixed) runs
before the first job starts: a mistake is one line and exit 255, and nothing ran.
"""

from __future__ import annotations

import codecs
import collections
import os
import stat
import sys

from ... import _platform, _progress
from ..._exec import _api
from ..._exec._job import Job
from ..._exec._replace import Template
from ..._exec._runner import Runner
from ..._exec._spawn import NotRunnable, find_program
from .. import _controls, _exits, _joblog
from .._exits import UsageError, stdin_open
from . import _args, _items
from ._halt import Halt, status_of
from ._printer import Printer, _command_line


def run(args) -> int:
    command, groups = _args.split(args.argv)
    _check_combinations(args, groups)
    ctl = _controls.from_args(args)
    halt = Halt(args.halt)
    try:
        template = Template(command[0] if args.shell and len(command) == 1 else command,
                            shell=args.shell)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    environ = {**os.environ, **dict(args.env)} if args.env else None
    on_dask = ctl.backend == "dask"
    if args.workdir is not None and not on_dask and not os.path.isdir(args.workdir):
        raise UsageError(f"--workdir {args.workdir}: no such folder")
    if on_dask and args.round_robin:
        raise UsageError("--round-robin is for jobs on this machine, not --backend dask")
    if on_dask and args.line_buffer:
        raise UsageError("--line-buffer is for jobs on this machine, not --backend dask")
    if template.program is not None and not args.dry_run and not on_dask:
        try:  # on Dask the program must exist on the workers, not necessarily here
            find_program(template.program, cwd=args.workdir, env=environ)
        except NotRunnable as exc:
            raise UsageError(str(exc)) from None
    resume = args.resume or args.resume_failed
    skip = _joblog.finished(args.joblog, failed_too=args.resume) if resume else set()
    if args.pipe:
        rows, total = _pipe_blocks(args, ctl.workers, splice=not on_dask), None
    else:
        columns, total = _items.items(_items.sources(args, groups), args.colsep)
        rows = ((row, None) for row in columns)
    issued = collections.deque()  # job numbers in the order the runner took them, for -k

    def make_jobs():
        for seq, (row, stdin) in enumerate(rows, 1):
            if seq not in skip:
                issued.append(seq)
                yield Job(seq, row, stdin)

    jobs = make_jobs()

    def render(job, slot):
        return template.render(job.columns, job.seq, slot)

    if args.dry_run:
        for job in jobs:
            print(_command_line(render(job, (job.seq - 1) % ctl.workers + 1)))
        return _exits.OK
    joblog = _joblog.JobLog(args.joblog, _joblog.EXEC, append=resume) if args.joblog else None
    printer = Printer(tag=args.tag, results=args.results, line_mode=args.line_buffer)
    if on_dask:
        runner = _dask_runner(args, ctl, render)
    else:
        runner = Runner(render, workers=ctl.workers, timeout=ctl.timeout,
                        retries=ctl.retries, capture=not args.line_buffer,
                        stream=printer.stream if args.line_buffer else None, env=environ,
                        cwd=args.workdir)
    bar = _progress.bar(ctl.progress, None if total is None else total - len(skip), "exec")
    done_jobs = runner.run(jobs)
    if args.keep_order:
        done_jobs = _api.in_order(done_jobs, issued)
    failed = ran = 0
    halted = None
    try:
        for done in done_jobs:
            try:
                ran += 1
                printer.job(done)
                if joblog is not None:
                    _log(joblog, done)
                bar.update(1)
                if done.returncode != 0:
                    failed += 1
                    _say(_api.describe(done, ctl.timeout))
                when = halt.record(done.returncode == 0)
                if when and halted is None:
                    halted = done.job.seq, status_of(done)
                    if when == "now":
                        break
                    runner.stop_launching()
            finally:
                done.close()
    finally:
        done_jobs.close()
        bar.close()
        if joblog is not None:
            joblog.close()
    if halted is not None:
        _say(f"halted by --halt {args.halt} at job {halted[0]}; {failed} failed")
        return halted[1]
    if failed:
        _say(f"{failed} of {ran} job{'s' if ran != 1 else ''} failed")
        return _exits.jobs_failed(failed)
    return _exits.OK


def _dask_runner(args, ctl, render):
    try:
        from . import _dask  # noqa: F401  the one-job half of the backend
    except ImportError:
        raise UsageError("--backend dask needs batch/cli/exec/_dask.py, which this build "
                         "lacks") from None
    from ._on_dask import DaskRunner
    # --env adds to each worker's own environment: this machine's PATH means nothing there.
    return DaskRunner(render, workers=args.workers, timeout=ctl.timeout, retries=ctl.retries,
                      env=dict(args.env), cwd=args.workdir,
                      address=ctl.options.get("address"))


def _check_combinations(args, groups) -> None:
    if args.round_robin and not args.pipe:
        raise UsageError("--round-robin hands --pipe blocks to long-lived jobs: add --pipe")
    if args.round_robin and args.retries:
        raise UsageError("--round-robin: a job's blocks are gone once sent, so --retries "
                         "cannot run it again")
    if args.pipe and (groups or args.arg_file):
        raise UsageError("--pipe feeds stdin to the jobs: it takes no ::: or :::: items")
    if args.line_buffer and args.keep_order:
        raise UsageError("--line-buffer prints lines as they come: it cannot keep the order")
    if args.line_buffer and args.results:
        raise UsageError("--results keeps each job's whole output: not with --line-buffer")
    if (args.resume or args.resume_failed) and not args.joblog:
        raise UsageError("--resume and --resume-failed read --joblog FILE: give one")
    if args.results and os.path.exists(args.results) and not os.path.isdir(args.results):
        raise UsageError(f"--results {args.results}: not a folder")


def _pipe_blocks(args, workers: int, *, splice: bool = True):
    try:
        from ._blocks import blocks, file_ranges
    except ImportError:
        raise UsageError("--pipe needs batch/cli/exec/_blocks.py, which this build lacks") \
            from None
    if args.recend is not None:
        recend = codecs.escape_decode(args.recend.encode())[0]  # "\n", "\0", "\r\n"
    else:
        recend = b"\0" if args.null else b"\n"
    if not recend:
        raise UsageError("--recend must not be empty")
    stdin_open("--pipe blocks", "give the input on stdin")
    fd = _regular_file(sys.stdin) if splice else None
    if fd is not None:  # GNU's --pipepart, automatically: cut in place, spliced to the jobs
        cut = file_ranges(fd, args.block, recend)
    else:
        _enlarge_if_pipe(sys.stdin)
        cut = blocks(sys.stdin.buffer, args.block, recend)
    if args.round_robin:
        from ..._exec._feed import Shared
        shared = Shared(cut)
        return (((), shared) for _ in range(workers))
    return (((), block) for block in cut)


def _enlarge_if_pipe(stream) -> None:
    """Give a pipe on stdin (`cat big | ...`) 1 MiB: read 64 KiB at a time from cat's
    default pipe, 1 GiB cost 16,000 reads and 0.67-0.73 s; enlarged, 0.31-0.47 s
    (measured 2026-12-01, load average about 3 on 2 cores)."""
    try:
        fd = stream.fileno()
        if stat.S_ISFIFO(os.fstat(fd).st_mode):
            _platform.enlarge_pipe(fd)
    except (AttributeError, OSError, ValueError):
        pass


def _regular_file(stream) -> int | None:
    """stdin's descriptor when it is a regular file (`< big.txt`), else None."""
    try:
        fd = stream.fileno()
        return fd if stat.S_ISREG(os.fstat(fd).st_mode) else None
    except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation is an OSError
        return None


def _log(joblog, done) -> None:
    exitval = -1 if done.timed_out else (0 if done.signal is not None else done.exitcode)
    joblog.write(done.job.seq, done.host, _joblog.starttime(done.started),
                 _joblog.runtime(done.runtime), done.sent, done.received, exitval,
                 done.signal or 0, _command_line(done.argv))


def _say(message: str) -> None:
    print(f"batch: error: {message}", file=sys.stderr, flush=True)
