"""Output formats of `batch run`, and that an output is never left half-written."""

from __future__ import annotations

import csv
import json

import msgpack
import numpy as np
import pytest
from test_cli_support import CORPUS, NUMBERS, assert_one_line_error, batch

A = np.load(NUMBERS)


def run_to(path, *args):
    p = batch("run", *args, "--output", path)
    assert p.returncode == 0, p.stderr
    assert p.stdout == ""
    return path


def test_json_and_msgpack_hold_the_same_data(tmp_path):
    j = json.loads(run_to(tmp_path / "s.json", NUMBERS).read_text())
    m = msgpack.unpackb(run_to(tmp_path / "s.msgpack", NUMBERS).read_bytes())
    assert j == m
    assert j["mean"] == pytest.approx(A.mean(), rel=1e-12)


def test_csv_of_a_table_and_of_an_array(tmp_path):
    rows = list(csv.reader(run_to(tmp_path / "w.csv", CORPUS, "--map", "wordfreq",
                                  "--top", 3).open()))
    assert rows[0] == ["word", "count"] and len(rows) == 4
    values = list(csv.reader(run_to(tmp_path / "s.csv", NUMBERS, "--map", "sort").open()))
    assert values[0] == ["value"]
    assert np.array_equal(np.array(values[1:], dtype=float).ravel(), np.sort(A))


def test_npy_of_an_array_and_of_a_table(tmp_path):
    hist = np.load(run_to(tmp_path / "h.npy", NUMBERS, "--map", "histogram", "--bins", 5))
    counts, edges = np.histogram(A, bins=5)
    assert hist.dtype.names == ("left", "right", "count")
    assert hist["count"].tolist() == counts.tolist()
    assert hist["left"].tolist() == edges[:-1].tolist()
    total = np.load(run_to(tmp_path / "t.npy", NUMBERS, "--map", "sum"))
    assert total.shape == () and total == pytest.approx(A.sum())


def test_human_output_of_a_table():
    p = batch("run", CORPUS, "--map", "grep", "-e", "^Abstract")
    assert p.returncode == 0
    first = p.stdout.splitlines()[0]
    assert first.split(":", 1)[0] == "0" and first.split(":", 1)[1].startswith("Abstract")


def test_failed_run_leaves_the_old_output_untouched(tmp_path):
    (tmp_path / "bad.py").write_text("def boom(chunk):\n    raise ValueError('no')\n")
    out = tmp_path / "out.json"
    out.write_text("previous")
    p = batch("run", NUMBERS, "--map", "bad.py:boom", "--output", out, cwd=tmp_path)
    assert p.returncode == 1
    assert out.read_text() == "previous"
    assert sorted(f.name for f in tmp_path.iterdir()) == ["bad.py", "out.json"]


def test_result_that_is_not_an_array_is_refused_without_a_file(tmp_path):
    p = batch("run", CORPUS, "--map", "wordfreq", "--reduce", "merge", "--output",
              tmp_path / "w.npy")
    assert "not an array" in assert_one_line_error(p)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name, fmt", [("result", "text"), ("result.txt", "text"),
                                       ("out", "json")])
def test_output_without_a_known_extension_is_what_stdout_shows(tmp_path, name, fmt):
    """Issue 9: `--output result` was refused ("unknown format '(none)'")."""
    shown = batch("run", CORPUS, "--map", "wordfreq", "--top", 5, "--format", fmt)
    assert shown.returncode == 0 and shown.stdout
    out = run_to(tmp_path / name, CORPUS, "--map", "wordfreq", "--top", 5, "--format", fmt)
    assert out.read_text() == shown.stdout
    assert sorted(f.name for f in tmp_path.iterdir()) == [name]  # no temporary left
    if fmt == "json":
        assert json.loads(out.read_text())  # the JSON of the table, not its text


@pytest.mark.parametrize("fmt", ["text", "json"])
@pytest.mark.parametrize("path", ["/dev/stdout", "-"])
def test_output_to_stdout_is_written_directly(tmp_path, fmt, path):
    """/dev/stdout (a pipe here) cannot be renamed over: it is written, not replaced;
    "-" is stdout too, not a file named "-"."""
    shown = batch("run", NUMBERS, "--map", "stats", "--format", fmt)
    p = batch("run", NUMBERS, "--map", "stats", "--format", fmt, "--output", path,
              cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    assert p.stdout == shown.stdout and "count" in p.stdout
    assert list(tmp_path.iterdir()) == []


def test_known_extension_to_a_pipe_is_written_directly(tmp_path):
    import os
    import threading

    fifo = tmp_path / "fifo.msgpack"
    os.mkfifo(fifo)
    got = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()))
    reader.start()
    p = batch("run", NUMBERS, "--map", "stats", "--output", fifo)
    reader.join(10)
    if reader.is_alive():  # batch never opened the FIFO: release the reader's open()
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        reader.join(10)
    assert p.returncode == 0, p.stderr
    assert msgpack.unpackb(got[0])["count"] == len(A)
