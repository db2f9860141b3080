"""Helpers for the CLI tests: run the real `batch` command in a subprocess.

`python -m batch` runs the same `batch.cli:main` the console script does. PYTHONPATH
points at this checkout, so the tests work from any folder (they run in tmp_path).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "data"
NUMBERS = DATA / "numbers.npy"
CORPUS = DATA / "corpus.txt"


def env() -> dict:
    e = dict(os.environ)
    e["PYTHONPATH"] = str(ROOT) + os.pathsep + e.get("PYTHONPATH", "")
    e.pop("BATCH_SCHEDULER", None)
    return e


def batch(*args, input=None, cwd=None, timeout=60) -> subprocess.CompletedProcess:
    """Run `batch ARGS...`; text in, text out."""
    return subprocess.run([sys.executable, "-m", "batch", *map(str, args)], input=input,
                          capture_output=True, text=True, cwd=cwd, env=env(),
                          timeout=timeout)


def batch_json(*args, **kw):
    """The JSON a successful `batch run ARGS... --format json` prints."""
    p = batch("run", *args, "--format", "json", **kw)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def start(*args, cwd=None) -> subprocess.Popen:
    """A running `batch`, with SIGINT and SIGTERM at their defaults (a background test
    runner may have them ignored, and children inherit that)."""
    return subprocess.Popen([sys.executable, "-m", "batch", *map(str, args)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=cwd, env=env(), preexec_fn=_default_signals)


def _default_signals():
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def assert_one_line_error(p: subprocess.CompletedProcess, code: int = 2) -> str:
    """Exit `code`, nothing on stdout, exactly one `batch: error:` line, no traceback."""
    assert p.returncode == code, (p.returncode, p.stderr)
    assert "Traceback" not in p.stderr
    lines = p.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("batch: error: "), p.stderr
    assert p.stdout == ""
    return lines[0]


def write_module(folder: Path, name: str, source: str) -> Path:
    path = folder / f"{name}.py"
    path.write_text(source)
    return path
