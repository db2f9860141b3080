"""`batch run X.npy --map file.py:fn --output Y.npy`: written through map_blocks."""

from __future__ import annotations

import os

import numpy as np
from test_cli_support import batch

FUNCTIONS = '''
import os, signal
import numpy as np

def triple(b, out=None):
    if out is not None:  # only map_blocks passes out=: the marker says which path ran
        open(os.environ["MARK"], "a").write("out\\n")
    return np.multiply(b, 3.0, out=out)

def evens(b):
    return b[b % 2 == 0]

def broken(b):
    if 2500 in b:
        raise ValueError("no 2500 here")
    return b

def killed_once(b, out=None):
    if 2500 in b and not os.path.exists(os.environ["MARK"]):
        open(os.environ["MARK"], "w").close()
        out[:] = -1
        os.kill(os.getpid(), signal.SIGKILL)
    return np.multiply(b, 2.0, out=out)
'''


def setup(tmp_path, monkeypatch):
    (tmp_path / "fns.py").write_text(FUNCTIONS)
    src = tmp_path / "big.npy"
    np.save(src, np.arange(10_000, dtype=np.float64).reshape(5000, 2))
    monkeypatch.setenv("MARK", str(tmp_path / "mark"))  # the subprocess inherits it
    return src, np.load(src)


def test_npy_output_is_written_by_the_workers(tmp_path, monkeypatch):
    src, a = setup(tmp_path, monkeypatch)
    p = batch("run", src, "--map", f"{tmp_path}/fns.py:triple", "--output",
              tmp_path / "r.npy", "--workers", "2", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    np.testing.assert_array_equal(np.load(tmp_path / "r.npy"), a * 3.0)
    assert "out" in (tmp_path / "mark").read_text()


def test_a_function_that_drops_rows_still_gets_the_general_path(tmp_path, monkeypatch):
    src, a = setup(tmp_path, monkeypatch)
    p = batch("run", src, "--map", f"{tmp_path}/fns.py:evens", "--output",
              tmp_path / "r.npy", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    np.testing.assert_array_equal(np.load(tmp_path / "r.npy"), a[a % 2 == 0])


def test_a_failed_run_leaves_no_file_under_any_name(tmp_path, monkeypatch):
    src, _ = setup(tmp_path, monkeypatch)
    before = set(os.listdir(tmp_path))
    p = batch("run", src, "--map", f"{tmp_path}/fns.py:broken", "--output",
              tmp_path / "r.npy", cwd=tmp_path)
    assert p.returncode == 1
    assert "no 2500 here" in p.stderr and "Traceback" not in p.stderr
    assert set(os.listdir(tmp_path)) == before


def test_a_killed_block_is_retried_whole(tmp_path, monkeypatch):
    src, a = setup(tmp_path, monkeypatch)
    p = batch("run", src, "--map", f"{tmp_path}/fns.py:killed_once", "--output",
              tmp_path / "r.npy", "--retries", "1", "--workers", "2", "--backend", "fork",
              cwd=tmp_path)  # a worker process to kill, on the free-threaded build too
    assert p.returncode == 0, p.stderr
    assert (tmp_path / "mark").exists()
    np.testing.assert_array_equal(np.load(tmp_path / "r.npy"), a * 2.0)
