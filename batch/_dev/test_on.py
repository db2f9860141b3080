"""Run batch's test suite on other interpreters, one command and one line each.

    python -m batch._dev.test_on /opt/python3.13t/bin/python3.13t /opt/python3.13/bin/python3.13
    python -m batch._dev.test_on python3.12 -- tests/test_contract.py -x

For each interpreter PATH:

    probe PATH ─► venv (made once, kept, under the temporary folder; --fresh remakes it)
        ─► pip install -e '<this checkout>[test]'  (skipped when the venv has it all)
        ─► python -m pytest, in this checkout, output to VENV.log beside the venv
        ─► one line: 3.13.15t (free-threaded, GIL off): 330 passed, 29 skipped in 96.1s

The exit status is 0 only if every interpreter's suite passed. CI runs the suite on one
interpreter; this is how the others are checked before a release or a change to anything
version-specific.

numpy is installed with `--only-binary numpy`, so pip picks the newest numpy that has a
wheel for the interpreter (the free-threaded cp313t wheels stop at 2.4, and building 2.5
from source took about 9 minutes here without BLAS); if no wheel fits at all, a second
attempt lets pip build. Extras that do not install on an interpreter are not forced: a
missing Dask makes its tests skip with the reason, which the result line counts.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import subprocess
import sys
import tempfile
import time

from .._bench import _interpreters

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# What the venv must import before pytest can run batch's suite; dask is optional.
NEEDED = ("numpy", "msgpack", "tqdm", "threadpoolctl", "pytest", "pytest_timeout")

# pytest's closing line: "3 failed, 310 passed, 29 skipped, 2 warnings in 96.12s", with
# rows of = around it unless -q.
_SUMMARY = re.compile(r"^=* ?(\d+ (?:passed|failed|errors?|skipped|deselected|warnings?)"
                      r"\b.* in [\d.]+s(?: \([\d:]+\))?) ?=*$")


class Failed(Exception):
    """A step before pytest failed: the message names the step and the log to read."""


def venv_dir(info: dict, base: str | None = None) -> str:
    """One venv per interpreter (by real path) and checkout, kept between runs."""
    key = hashlib.sha1(f"{os.path.realpath(info['executable'])}\0{ROOT}".encode())
    return os.path.join(base or tempfile.gettempdir(),
                        f"batch-test-{info['label']}-{key.hexdigest()[:8]}")


def _step(what: str, argv: list[str], log: str, **kw) -> float:
    t0 = time.monotonic()
    with open(log, "a") as out:
        out.write(f"\n$ {' '.join(argv)}\n")
        out.flush()
        code = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT, **kw).returncode
    if code:
        raise Failed(f"{what} failed (exit {code}); see {log}")
    return time.monotonic() - t0


def prepare(path: str, *, venv: str | None = None, fresh: bool = False, say=print) -> dict:
    """A venv of `path` that runs the suite: made and installed as needed. Its probe."""
    info = _interpreters.probe(path, cwd=ROOT)
    venv = venv or venv_dir(info)
    python = os.path.join(venv, "bin", "python")
    log = venv.rstrip(os.sep) + ".log"  # beside the venv: there before the venv is
    if fresh or not os.path.exists(python):
        say(f"  {info['label']}: making {venv}")
        _step("making the venv", [path, "-m", "venv", "--clear", venv], log)
    mine = _interpreters.probe(python, cwd=ROOT)
    missing = [m for m in NEEDED if not mine["modules"].get(m)]
    if missing or mine["batch_error"]:
        say(f"  {info['label']}: installing batch[test] ({', '.join(missing) or 'batch'} "
            f"missing); log {log}")
        pip = [python, "-m", "pip", "install", "--disable-pip-version-check", "-q"]
        try:
            _step("pip (numpy as a wheel)", pip + ["--only-binary", "numpy",
                                                   "-e", f"{ROOT}[test]"], log, cwd=ROOT)
        except Failed:
            _step("pip", pip + ["-e", f"{ROOT}[test]"], log, cwd=ROOT)
        mine = _interpreters.probe(python, cwd=ROOT)
        missing = [m for m in NEEDED if not mine["modules"].get(m)]
        if missing or mine["batch_error"]:
            raise Failed(f"after pip, {python} still lacks {', '.join(missing) or 'batch'}"
                         f" ({mine['batch_error'] or 'not installed'}); see {log}")
    mine["venv"], mine["log"] = venv, log
    return mine


def run_suite(env_info: dict, pytest_args: list[str]) -> tuple[int, str, float]:
    """pytest in this checkout under the venv's python: (exit code, summary, seconds)."""
    log = env_info["log"]
    t0 = time.monotonic()
    with open(log, "a") as out:
        out.write(f"\n$ pytest {' '.join(pytest_args)}\n")
        out.flush()
        code = subprocess.run(
            [os.path.join(env_info["venv"], "bin", "python"), "-m", "pytest", "-q",
             "-p", "no:cacheprovider", "-rfE", *pytest_args],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=ROOT,
            env=_clean_env()).returncode
    return code, summary(log), time.monotonic() - t0


def _clean_env() -> dict:
    """This process's environment, minus what would point the venv at another Python."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP")}
    return env


def summary(log: str) -> str:
    """pytest's closing counts from the log, or what went wrong if it printed none."""
    with open(log, errors="replace") as f:  # the log keeps every run: read the last
        lines = f.read().rsplit("\n$ pytest", 1)[-1].splitlines()
    for line in reversed(lines):
        found = _SUMMARY.match(line.strip())
        if found:
            return found.group(1)
    return f"no pytest summary (last line: {lines[-1] if lines else 'none'!r})"


def failures(log: str, limit: int = 20) -> list[str]:
    """The FAILED/ERROR lines of pytest's short summary (-rfE), last run in the log."""
    with open(log, errors="replace") as f:
        text = f.read().rsplit("\n$ pytest", 1)[-1]
    return [line for line in text.splitlines() if line.startswith(("FAILED", "ERROR"))][:limit]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m batch._dev.test_on",
        description="Run batch's tests on other Pythons: venv, install, pytest, one line.")
    parser.add_argument("pythons", nargs="+", metavar="PATH",
                        help="interpreters (a path, or a name found on PATH)")
    parser.add_argument("--venv", help="the venv to use (only with one PATH); default: "
                        "one per interpreter under the temporary folder, kept")
    parser.add_argument("--fresh", action="store_true", help="remake the venv first")
    parser.epilog = "Arguments after -- go to pytest (default: the whole suite)."
    argv = list(sys.argv[1:] if argv is None else argv)
    cut = argv.index("--") if "--" in argv else len(argv)
    args, extra = parser.parse_args(argv[:cut]), argv[cut + 1:]
    if args.venv and len(args.pythons) > 1:
        parser.error("--venv names one venv: give one PATH with it")
    worst = 0
    for path in args.pythons:
        path = _interpreters.which(path)
        try:
            env_info = prepare(path, venv=args.venv, fresh=args.fresh)
        except (Failed, _interpreters.NotAnInterpreter) as exc:
            print(f"{path}: ERROR: {exc}", flush=True)
            worst = worst or 2
            continue
        code, counts, seconds = run_suite(env_info, extra)
        print(f"{env_info['label']} ({env_info['kind']}) {path}: {counts} "
              f"[{seconds:.0f} s; log {env_info['log']}]", flush=True)
        for line in failures(env_info["log"]) if code else ():
            print(f"    {line}")
        worst = worst or (1 if code else 0)
    return worst


if __name__ == "__main__":
    sys.exit(main())
