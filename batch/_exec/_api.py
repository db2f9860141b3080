"""batch.pexec and batch.iexec: programs over items from Python, as CompletedProcess.

Both are thin layers over _runner.Runner; iexec yields lazily, reading `items` only as
slots free up, and holds only the results that finished ahead of the oldest running job
(their output spooled to disk past the run's memory budget).
"""

from __future__ import annotations

import os
import subprocess

from .. import _cpus, _errors, _progress
from ._job import Job
from ._replace import Template, shell_line
from ._runner import Runner

_TAIL_LINES, _TAIL_CHARS = 5, 800


def iexec(command, items, *, workers=None, timeout=None, retries=0, keep_order=True,
          check=True, capture=True, input=None, env=None, cwd=None, progress=False,
          shell=False):
    """Lazily yield a subprocess.CompletedProcess per item (see pexec)."""
    template = Template(command, shell=shell)
    total = len(items) if hasattr(items, "__len__") else None
    environ = None if env is None else {**os.environ, **{k: str(v) for k, v in env.items()}}
    feed = _input(input)
    jobs = (Job(seq, _columns(item), feed(item)) for seq, item in enumerate(items, 1))
    runner = Runner(lambda job, slot: template.render(job.columns, job.seq, slot),
                    workers=workers or _cpus.usable_cpus(), timeout=timeout, retries=retries,
                    capture=capture, env=environ, cwd=None if cwd is None else os.fspath(cwd))
    done = runner.run(jobs)
    if keep_order:
        done = in_order(done)
    bar = _progress.bar(progress, total, "exec")
    try:
        for d in done:
            bar.update(1)
            try:
                if check and d.returncode != 0:
                    raise failure(d, timeout)
                yield completed(d)
            finally:
                d.close()
    finally:
        done.close()
        bar.close()


def pexec(command, items, **kwargs):
    """Run `command` once per item, many at a time; a list of CompletedProcess.

    command: a list of arguments with replacement strings ({} {.} {/} {//} {/.} {#} {%}
    {1}..{n}, see batch/_exec/_replace.py; none: the item is appended), or one string
    with shell=True (values are then shell-quoted). An item is a str, bytes or path, or a
    tuple of them for {1}..{n}. input: bytes (or str) for every job's stdin, or a
    function item -> bytes; None gives /dev/null. env: variables added to os.environ.
    capture=False leaves stdout/stderr to this process's own. check=True raises
    JobFailed (a BatchError and a subprocess.CalledProcessError) for the first job that
    failed after its retries, and stops the others. keep_order=False: completion order.
    """
    it = iexec(command, items, **kwargs)
    try:
        return list(it)
    finally:
        it.close()


def in_order(done, issued=None):
    """Done results by job number; only those finished ahead of a slower one are held.

    issued: a deque the job source appends each job number to as the runner takes it,
    when numbers are not consecutive (--resume skips some); else 1, 2, 3, ...
    """
    waiting, want = {}, 1
    try:
        for d in done:
            waiting[d.job.seq] = d
            while True:
                if issued is not None:
                    if not issued or issued[0] not in waiting:
                        break
                    want = issued.popleft()
                elif want not in waiting:
                    break
                yield waiting.pop(want)
                want += 1
        for seq in sorted(waiting):  # numbers skipped by the caller's jobs
            yield waiting.pop(seq)
    finally:
        for d in waiting.values():
            d.close()
        done.close()


def completed(d) -> subprocess.CompletedProcess:
    out = None if d.stdout is None else d.stdout.getvalue()
    err = None if d.stderr is None else d.stderr.getvalue()
    if d.error:  # never started: no pipes were made
        out, err = b"", os.fsencode(d.error + "\n")
    return subprocess.CompletedProcess(d.argv, d.returncode, out, err)


def describe(d, timeout=None) -> str:
    """'job 3 (sh -c 'exit 2') exited with status 2': what failed and how, one line."""
    what = f"job {d.job.seq} ({_clip(shell_line(d.argv))})"
    if d.error:
        return f"{what} could not start: {d.error}"
    if d.timed_out:
        how = f"ran longer than the {timeout:g} s timeout and was stopped" if timeout \
            else "was stopped at its timeout"
    elif d.signal is not None:
        how = f"was killed by {_errors.signal_name(d.signal)} ({d.signal})"
    else:
        how = f"exited with status {d.exitcode}"
    return f"{what} {how}"


def failure(d, timeout=None) -> _errors.JobFailed:
    message = describe(d, timeout)
    tail = _tail(d.stderr.getvalue() if d.stderr is not None else b"")
    if tail:
        message += f"; its stderr ends: {tail}"
    done = completed(d)
    return _errors.JobFailed(message, job=d.job.seq, item=d.job.columns, cmd=d.argv,
                             returncode=d.returncode, exitcode=d.exitcode, signal=d.signal,
                             timed_out=d.timed_out, output=done.stdout, stderr=done.stderr)


def _tail(err: bytes) -> str:
    lines = err.decode("utf-8", "replace").rstrip().splitlines()[-_TAIL_LINES:]
    return " | ".join(lines)[-_TAIL_CHARS:]


def _clip(text: str, width: int = 200) -> str:
    return text if len(text) <= width else text[:width - 3] + "..."


def _columns(item) -> tuple:
    return tuple(item) if isinstance(item, (tuple, list)) else (item,)


def _input(input):
    if input is None:
        return lambda item: None
    if callable(input):
        return lambda item: _bytes(input(item))
    data = _bytes(input)
    return lambda item: data


def _bytes(data) -> bytes:
    return data.encode() if isinstance(data, str) else bytes(data)
