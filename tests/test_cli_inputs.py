"""Every kind of INPUT `batch run` reads, and the chunk plan it makes of each."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from test_cli_support import CORPUS, NUMBERS, assert_one_line_error, batch, batch_json, env

A = np.load(NUMBERS)


def test_no_input_runs_a_real_job_on_the_sample_data():
    p = batch("run")
    assert p.returncode == 0, p.stderr
    assert "sample data" in p.stderr and "numbers.npy" in p.stderr
    stats = dict(line.split() for line in p.stdout.splitlines())
    assert int(stats["count"]) == A.size
    assert float(stats["mean"]) == pytest.approx(A.mean(), rel=1e-12)


def test_no_input_picks_the_sample_that_suits_the_mapper():
    assert batch_json("--map", "lines") == CORPUS.read_bytes().count(b"\n")
    assert "corpus.txt" in "".join(batch_json("--map", "size"))


def test_npz_stored_and_compressed(tmp_path):
    x, y = np.arange(1000.0), np.arange(77)
    np.savez(tmp_path / "stored.npz", x=x, y=y)
    np.savez_compressed(tmp_path / "packed.npz", only=x * 2)
    assert batch_json(tmp_path / "stored.npz", "--key", "y", "--map", "sum") == y.sum()
    assert batch_json(tmp_path / "stored.npz", "--key", "x", "--map", "max") == 999.0
    assert batch_json(tmp_path / "packed.npz", "--map", "sum") == (x * 2).sum()


def test_text_file_chunks_start_at_line_starts(tmp_path):
    # A long line spans several chunk targets, lines end in CRLF, the last has no newline.
    lines = ["short", "x" * 50_000, "", "crlf line", "tail without newline"]
    path = tmp_path / "t.txt"
    path.write_bytes(("\r\n".join(lines)).encode())
    for chunks in (1, 40):
        assert batch_json(path, "--map", "grep", "-e", ".", "--chunks", chunks) == \
            [[i, line] for i, line in enumerate(lines) if line]
    assert batch_json(path, "--map", "lines", "--chunks", 40) == len(lines)


def test_stdin_lines_to_a_user_function():
    got = batch_json("-", "--map", "builtins:str.upper", input="a\nb\nc\n")
    assert got == ["A", "B", "C"]


def test_gzip_file_is_streamed(tmp_path):
    (tmp_path / "c.txt.gz").write_bytes(gzip.compress(CORPUS.read_bytes()))
    assert batch_json(tmp_path / "c.txt.gz", "--map", "wordfreq", "--top", 5) == \
        batch_json(CORPUS, "--map", "wordfreq", "--top", 5)


def test_folder_glob_and_null_separated_names(tmp_path):
    for name in ("b.csv", "a.csv", "c.log"):
        (tmp_path / name).write_text(name * 3)
    csvs = [str(tmp_path / n) for n in ("a.csv", "b.csv")]
    assert list(batch_json(tmp_path, "--map", "size")) == csvs + [str(tmp_path / "c.log")]
    assert list(batch_json(str(tmp_path / "*.csv"), "--map", "size")) == csvs
    names = "\0".join(reversed(csvs)) + "\0"
    assert list(batch_json("--null", "--map", "size", input=names)) == csvs[::-1]


def test_every_local_backend_gives_the_same_answer():
    fork = batch_json(NUMBERS, "--map", "stats", "--chunks", 6, "--backend", "fork")
    for backend in ("thread", "serial"):
        assert batch_json(NUMBERS, "--map", "stats", "--chunks", 6, "--backend", backend) == fork


def test_dry_run_prints_the_plan_and_runs_nothing(tmp_path):
    p = batch("run", NUMBERS, "--dry-run", "--chunks", 3, "--workers", 2,
              "--joblog", tmp_path / "log.tsv", "--checkpoint", tmp_path / "ck")
    assert p.returncode == 0, p.stderr
    rows = [line.split("\t") for line in p.stdout.splitlines() if line[:1].isdigit()]
    assert [int(r[1]) for r in rows] == [len(c) for c in np.array_split(A, 3)]
    assert rows[0][2] == f"rows 0-{len(np.array_split(A, 3)[0]) - 1}"
    assert rows[-1][2].endswith(f"-{A.size - 1}")
    assert list(tmp_path.iterdir()) == []  # no joblog, no checkpoint folder


def test_workers_as_a_percentage():
    p = batch("run", NUMBERS, "--workers", "50%", "--dry-run")
    cpus = len(os.sched_getaffinity(0))
    assert f"{max(1, -(-cpus // 2))} workers" in p.stdout


# --chunks N on a stream (issue 9: it was refused with "needs an input whose size is known")

LINES = "".join(f"{i:07d}\n" for i in range(20_000)).encode()  # equal lines: equal shares


def _chunk_lines(path, n) -> list[int]:
    """Lines per chunk of the plan `batch run PATH --chunks n` makes."""
    from batch.cli.run._line_inputs import StreamInput

    inp = StreamInput(str(path))
    return [task.count for task in inp.tasks(inp.plan(2, n, None), lambda lines: None)]


def test_chunks_of_a_gzip_file_are_cut_by_its_size(tmp_path):
    (tmp_path / "n.gz").write_bytes(gzip.compress(LINES))
    counts = _chunk_lines(tmp_path / "n.gz", 5)
    assert len(counts) == 5 and sum(counts) == 20_000
    assert max(counts) <= 1.05 * min(counts), counts
    p = batch("run", "n.gz", "--map", "lines", "--chunks", 5, "--joblog", "j.tsv",
              "--format", "json", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout) == 20_000
    assert len((tmp_path / "j.tsv").read_text().splitlines()) == 1 + 5  # header + chunks


def test_chunks_of_a_multi_member_gzip_file_stay_at_most_n(tmp_path):
    # The trailer holds the last member's size only: a lower bound that the run outgrows.
    (tmp_path / "m.gz").write_bytes(gzip.compress(LINES[:40_000]) + gzip.compress(LINES[40_000:]))
    counts = _chunk_lines(tmp_path / "m.gz", 4)
    assert len(counts) == 4 and sum(counts) == 20_000


def test_chunks_of_stdin_redirected_from_a_file(tmp_path, monkeypatch):
    (tmp_path / "in.txt").write_bytes(LINES)
    with open(tmp_path / "in.txt") as stdin:
        monkeypatch.setattr(sys, "stdin", stdin)
        counts = _chunk_lines("-", 3)
    assert len(counts) == 3 and sum(counts) == 20_000
    assert max(counts) <= 1.05 * min(counts), counts
    with open(tmp_path / "in.txt") as stdin:
        p = subprocess.run([sys.executable, "-m", "batch", "run", "-", "--map", "lines",
                            "--chunks", "3", "--format", "json"], stdin=stdin,
                           capture_output=True, text=True, env=env(), timeout=60)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout) == 20_000


def test_chunks_of_a_piped_stdin_say_what_to_use_instead():
    p = batch("run", "-", "--chunks", 3, input="a\nb\n")
    assert "--chunk-size" in assert_one_line_error(p)
