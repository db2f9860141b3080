"""The exec workloads: a program run per item, and --pipe blocks, as a user types them.

    exec_true   seq N | batch exec -j W true
                seq N | xargs -P W -n 1 true
                seq N | parallel -j W true
    exec_echo   seq N | batch exec -j W sh -c 'echo {}'            (output captured)
                seq N | xargs -P W -I{} sh -c 'echo {}'
                seq N | parallel -q -j W sh -c 'echo {}'
    exec_pipe   cat big.txt | wc -l                                 (the baseline)
                cat big.txt | batch exec --pipe -j W wc -l          (issue 10's row)
                cat big.txt | batch exec --pipe -j W --block 32M wc -l
                cat big.txt | batch exec --pipe -j W --round-robin wc -l
                wc -l < big.txt                              (the file rows' baseline)
                batch exec --pipe -j W wc -l < big.txt       (stdin a file: spliced)
                ... the same with --block 32M, and with --round-robin

The benchmarked process (_child) builds the items, or writes the text file, before any
clock starts, then times the whole command from its start to its exit, output read to
the end. GNU parallel gets `-q` for the echo command because it hands its command line
to a shell: without it, `sh -c 'echo {}'` would arrive as `sh -c echo 1` and print
nothing. Every result is checked: the exit status, and all N numbers (echo) or the exact
line count (pipe) in the output.

The text file is unlinked as soon as it is written and reaches `cat` as its stdin (the
same reading as `cat big.txt`), so a benchmark killed mid-run leaves no gigabyte behind.
It is read from the page cache: this measures the pipe and the jobs, not the disk.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import shutil
import subprocess
import sys
import tempfile

# Rows whose command reads the text file as its stdin (`< big.txt`), not through cat:
# key -> the key with the same command line.
FILE_STDIN = {"wc_file": "wc", "exec_file": "exec", "exec_file_32M": "exec_32M",
              "exec_file_rr": "exec_rr"}

# What the batch exec implementation needs, said as the row's note when it is missing.
EXEC_MISSING = "batch exec not available"


@dataclasses.dataclass
class Work:
    """What an exec workload runs: items on stdin, or a file's bytes through `cat`."""
    command: str                     # "true", "echo" or "pipe"
    items: bytes = b""               # "1\n2\n...N\n"
    fd: int = -1                     # the unlinked text file (pipe)
    lines: int = 0                   # lines in it


def argv(key: str, command: str, workers: int) -> list[str]:
    """The command line of implementation `key` for workload `command`."""
    w = str(workers)
    batch_exec = [sys.executable, "-m", "batch", "exec"]
    table = {
        ("exec", "true"): batch_exec + ["-j", w, "true"],
        ("exec", "echo"): batch_exec + ["-j", w, "sh", "-c", "echo {}"],
        ("exec", "pipe"): batch_exec + ["--pipe", "-j", w, "wc", "-l"],
        ("xargs", "true"): ["xargs", "-P", w, "-n", "1", "true"],
        ("xargs", "echo"): ["xargs", "-P", w, "-I{}", "sh", "-c", "echo {}"],
        ("parallel", "true"): ["parallel", "-j", w, "true"],
        ("parallel", "echo"): ["parallel", "-q", "-j", w, "sh", "-c", "echo {}"],
        ("wc", "pipe"): ["wc", "-l"],
        ("exec_32M", "pipe"): batch_exec + ["--pipe", "-j", w, "--block", "32M", "wc", "-l"],
        ("exec_rr", "pipe"): batch_exec + ["--pipe", "-j", w, "--round-robin", "wc", "-l"],
    }
    if key in FILE_STDIN:  # the same command line, the file itself as its stdin
        return argv(FILE_STDIN[key], command, workers)
    try:
        return table[key, command]
    except KeyError:
        raise TypeError(f"{key!r} does not run the {command!r} workload") from None


def run(key: str, work: Work, workers: int) -> tuple[int, bytes, bytes]:
    """Run the command once, to its exit; (exit status, stdout, stderr)."""
    cmd = argv(key, work.command, workers)
    if work.command != "pipe":
        done = subprocess.run(cmd, input=work.items, capture_output=True)
        return done.returncode, done.stdout, done.stderr
    os.lseek(work.fd, 0, os.SEEK_SET)
    if key in FILE_STDIN:
        done = subprocess.run(cmd, stdin=work.fd, capture_output=True)
        return done.returncode, done.stdout, done.stderr
    cat = subprocess.Popen(["cat"], stdin=work.fd, stdout=subprocess.PIPE)
    try:
        consumer = subprocess.Popen(cmd, stdin=cat.stdout, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE)
    except BaseException:
        cat.kill()
        cat.wait()
        raise
    finally:
        cat.stdout.close()  # the consumer holds the read end now; cat sees EPIPE if it dies
    out, err = consumer.communicate()
    status = cat.wait()
    return consumer.returncode or status, out, err


def runner(key: str, job, workers: int):
    return functools.partial(run, key, job.data, workers)


def check(work: Work, result) -> float:
    """Raise WrongResult unless the command succeeded and printed what it should."""
    from ._workloads import WrongResult, _expect
    status, out, err = result
    tail = err.decode(errors="replace").strip().splitlines()[-1:]
    _expect(status == 0, f"exit status {status}" + (f": {tail[0]}" if tail else ""))
    n = work.items.count(b"\n")
    if work.command == "true":
        _expect(out == b"", f"`true` printed {len(out)} bytes")
        return float(n)
    try:
        numbers = [int(x) for x in out.split()]
    except ValueError:
        raise WrongResult(f"output is not numbers: {out[:60]!r}") from None
    if work.command == "echo":
        _expect(sorted(numbers) == list(range(1, n + 1)),
                f"{len(numbers)} numbers printed for {n} items, or wrong ones")
        return float(sum(numbers))
    _expect(sum(numbers) == work.lines, f"{sum(numbers)} lines counted, not {work.lines}")
    return float(work.lines)


@functools.lru_cache(maxsize=None)
def byte_compiled() -> None:
    """batch's own modules byte-compiled, as in any installed copy, before a clock starts.

    Each exec row starts `python -m batch` anew from this checkout, and with
    PYTHONDONTWRITEBYTECODE set (as on the machine of benchmarks/README.md) no .pyc was
    ever written: every start compiled batch's 60 modules again, 103 ms a `batch exec
    true ::: 1` against 69 ms with them (interleaved, 21 runs each, 2026-12-02), a cost
    no installed copy pays (pip writes the .pyc) and no peer paid. They are written
    beside the sources, in __pycache__ as Python itself would; a read-only checkout is
    left as it is (quiet=2: nothing said)."""
    import compileall

    from ._runner import _package_root
    compileall.compile_dir(os.path.join(_package_root(), "batch"), quiet=2)


def items_job(command: str, p: dict):
    from ._workloads import Job
    byte_compiled()
    n = p["jobs"]
    work = Work(command, items=b"".join(b"%d\n" % i for i in range(1, n + 1)))
    return Job("exec", None, work, items=n, check=functools.partial(check, work))


def text_job(p: dict):
    """About p["bytes"] of text lines of varying length, in an unlinked temporary file."""
    from ._workloads import Job
    byte_compiled()
    lines = [b"line %07d %s\n" % (i, b"lorem ipsum " * (i % 9)) for i in range(20000)]
    chunk = b"".join(lines)
    repeats = max(1, p["bytes"] // len(chunk))
    fd, path = tempfile.mkstemp(prefix="batch-bench-", suffix=".txt")
    try:
        os.unlink(path)
        for _ in range(repeats):
            os.write(fd, chunk)
    except BaseException:
        os.close(fd)
        raise
    work = Work("pipe", fd=fd, lines=repeats * len(lines))
    return Job("exec", None, work, items=work.lines, input_bytes=repeats * len(chunk),
               check=functools.partial(check, work))


@functools.lru_cache(maxsize=None)
def batch_exec_available() -> bool:
    """Whether `python -m batch exec --help` works with this very copy of batch."""
    from ._runner import _package_root
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [_package_root()] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep)
                             if p]))
    try:
        done = subprocess.run([sys.executable, "-m", "batch", "exec", "--help"], env=env,
                              stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return False
    return done.returncode == 0


def on_path(program: str) -> bool:
    return shutil.which(program) is not None


def versions() -> dict:
    """The first line of `--version` of the programs compared, None where missing."""
    out = {}
    for program in ("xargs", "parallel"):
        try:
            done = subprocess.run([program, "--version"], capture_output=True, text=True,
                                  stdin=subprocess.DEVNULL, timeout=30)
            out[program] = (done.stdout.strip().splitlines() or [None])[0]
        except (OSError, subprocess.SubprocessError):
            out[program] = None
    return out
