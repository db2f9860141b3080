"""Bad usage and bad input: exit 2, one line on stderr, no traceback, nothing lost."""

from __future__ import annotations

import numpy as np
import pytest
from test_cli_support import CORPUS, NUMBERS, assert_one_line_error, batch


@pytest.fixture
def files(tmp_path):
    """A folder of broken inputs and broken user code."""
    np.save(tmp_path / "ok.npy", np.arange(100.0))
    raw = (tmp_path / "ok.npy").read_bytes()
    (tmp_path / "truncated.npy").write_bytes(raw[:len(raw) - 80])
    (tmp_path / "garbage.npy").write_bytes(b"this is not numpy at all")
    (tmp_path / "empty.npy").write_bytes(b"")
    np.save(tmp_path / "objects.npy", np.array([{}, 1], dtype=object), allow_pickle=True)
    np.savez(tmp_path / "two.npz", a=np.arange(3), b=np.arange(4))
    (tmp_path / "scalar.npy").write_bytes(raw[:0])
    np.save(tmp_path / "scalar.npy", np.float64(3.0))
    (tmp_path / "broken.gz").write_bytes(b"\x1f\x8b garbage after the magic")
    (tmp_path / "notgz.gz").write_bytes(b"plain text")
    (tmp_path / "syntax.py").write_text("def f(:\n")
    (tmp_path / "raises.py").write_text("raise RuntimeError('at import')\n")
    (tmp_path / "fine.py").write_text("VALUE = 3\ndef f(x):\n    return x\n")
    (tmp_path / "emptydir").mkdir()
    (tmp_path / "notempty").mkdir()
    (tmp_path / "notempty" / "keep.txt").write_text("mine")
    return tmp_path


BAD = {
    "missing file": ["missing.npy"],
    "garbage .npy": ["garbage.npy"],
    "truncated .npy": ["truncated.npy"],
    "empty .npy": ["empty.npy"],
    "object .npy": ["objects.npy"],
    "0-d .npy": ["scalar.npy"],
    ".npz without --key": ["two.npz"],
    ".npz unknown key": ["two.npz", "--key", "c"],
    "corrupt .gz": ["broken.gz"],
    "not gzip": ["notgz.gz"],
    "glob matching nothing": ["nothing-*.csv"],
    "empty folder": ["emptydir"],
    "unknown mapper": ["ok.npy", "--map", "nosuchthing"],
    "unknown reducer": ["ok.npy", "--reduce", "nosuchthing"],
    "module that does not import": ["ok.npy", "--map", "no_such_module_xyz:f"],
    "function that does not exist": ["ok.npy", "--map", "fine:nope"],
    "attribute that is not callable": ["ok.npy", "--map", "fine:VALUE"],
    "file.py with a syntax error": ["ok.npy", "--map", "syntax.py:f"],
    "module raising on import": ["ok.npy", "--map", "raises:f"],
    "workers 0": ["ok.npy", "--workers", "0"],
    "workers -1": ["ok.npy", "--workers=-1"],
    "workers not a number": ["ok.npy", "--workers", "many"],
    "chunks 0": ["ok.npy", "--chunks", "0"],
    "chunk-size 0": ["ok.npy", "--chunk-size", "0"],
    "timeout 0": ["ok.npy", "--timeout", "0"],
    "unknown backend": ["ok.npy", "--backend", "mpi"],
    "scheduler without dask": ["ok.npy", "--scheduler", "tcp://127.0.0.1:1"],
    "output is a folder": ["ok.npy", "--output", "emptydir"],
    "output folder missing": ["ok.npy", "--output", "no/such/dir/out.json"],
    "joblog folder missing": ["ok.npy", "--joblog", "no/such/dir/log.tsv"],
    "text mapper on an array": ["ok.npy", "--map", "wordfreq"],
    "file mapper on text": [str(CORPUS), "--map", "sha256"],
    "array mapper on files": ["emptydir/..", "--map", "mean"],
    "grep without pattern": [str(CORPUS), "--map", "grep"],
    "grep with a bad regex": [str(CORPUS), "--map", "grep", "--pattern", "(unclosed"],
    "bad histogram range": ["ok.npy", "--map", "histogram", "--range", "5,1"],
    "chunks of stdin": ["-", "--chunks", "3"],
    "--null with an INPUT": ["ok.npy", "--null"],
    "checkpoint in a folder of other files": ["ok.npy", "--checkpoint", "notempty"],
    "no --output for reduce none": ["ok.npy", "--map", "fine:f", "--reduce", "none",
                                    "--output", "x.json"],
}


@pytest.mark.parametrize("args", BAD.values(), ids=BAD.keys())
def test_bad_input_is_one_line_and_exit_2(files, args):
    p = batch("run", *args, input="", cwd=files, timeout=30)
    assert_one_line_error(p, 2)
    assert (files / "notempty" / "keep.txt").read_text() == "mine"
    assert not any(f.name.endswith(".tmp") for f in files.iterdir())


@pytest.mark.parametrize("option, value, message", [
    ("--timeout", "-1", "must be a positive number of seconds, got -1"),
    ("--timeout", "-.5", "must be a positive number of seconds, got -.5"),
    ("--workers", "-2", "must be at least 1, got -2"),
    ("--retries", "-1", "must be 0 or more, got -1"),
])
def test_a_negative_number_reaches_its_options_own_check(option, value, message):
    # Not "expected one argument": argparse takes "-1" for an option because -0 is one.
    line = assert_one_line_error(batch("run", NUMBERS, option, value, timeout=30), 2)
    assert message in line


def test_no_command_is_a_usage_error():
    assert_one_line_error(batch(), 2)


def test_histogram_of_stdin_needs_a_range():
    p = batch("run", "-", "--map", "histogram", input="1\n2\n")
    assert "--range" in assert_one_line_error(p, 2)


def test_debug_shows_the_traceback(files):
    p = batch("run", "--debug", "garbage.npy", cwd=files)
    assert p.returncode == 2
    assert "Traceback" in p.stderr and p.stderr.splitlines()[-1].startswith("batch: error:")


def test_checkpoint_of_another_job_is_refused_and_kept(tmp_path):
    first = batch("run", NUMBERS, "--map", "sum", "--checkpoint", tmp_path / "ck",
                  "--chunks", 3)
    assert first.returncode == 0, first.stderr
    before = sorted(p.name for p in (tmp_path / "ck").iterdir())
    p = batch("run", NUMBERS, "--map", "max", "--checkpoint", tmp_path / "ck")
    assert "--checkpoint" in assert_one_line_error(p, 2)
    p = batch("run", NUMBERS, "--map", "sum", "--checkpoint", tmp_path / "ck", "--chunks", 4)
    assert_one_line_error(p, 2)
    assert sorted(p.name for p in (tmp_path / "ck").iterdir()) == before
    assert len(before) == 4  # job.json and three chunks
