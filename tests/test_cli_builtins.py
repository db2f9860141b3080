"""Every built-in mapper and reducer of `batch run` against plain numpy / Python."""

from __future__ import annotations

import collections
import hashlib
import os
import re

import numpy as np
import pytest
from test_cli_support import CORPUS, NUMBERS, batch, batch_json

A = np.load(NUMBERS)


def corpus_lines() -> list[str]:
    raw = CORPUS.read_bytes().split(b"\n")
    if raw and raw[-1] == b"":
        raw.pop()
    return [r.rstrip(b"\r").decode("utf-8", "replace") for r in raw]


# --- arrays ------------------------------------------------------------------------------

@pytest.mark.parametrize("name, reference", [
    ("sum", np.sum), ("count", np.size), ("min", np.min), ("max", np.max),
    ("mean", np.mean), ("std", np.std), ("var", np.var),
])
def test_array_builtin_matches_numpy(name, reference):
    got = batch_json(NUMBERS, "--map", name, "--chunks", 7)
    assert got == pytest.approx(float(reference(A)), rel=1e-12, abs=0)


def test_stats_has_every_moment_at_once():
    got = batch_json(NUMBERS, "--map", "stats")
    want = {"count": A.size, "sum": A.sum(), "mean": A.mean(), "std": A.std(),
            "var": A.var(), "min": A.min(), "max": A.max()}
    assert set(got) == set(want)
    for key, value in want.items():
        assert got[key] == pytest.approx(float(value), rel=1e-12), key


def test_std_and_var_are_stable_far_from_zero(tmp_path):
    # Around 1e9 the sum-of-squares formula loses every digit of a variance near 1;
    # per-chunk moments merged with Chan's update must agree with numpy's two-pass one.
    rng = np.random.default_rng(7)
    data = 1e9 + rng.normal(scale=1.0, size=200_000)
    np.save(tmp_path / "far.npy", data)
    got = batch_json(tmp_path / "far.npy", "--map", "stats", "--chunks", 13)
    assert got["var"] == pytest.approx(np.var(data), rel=1e-9)
    assert got["std"] == pytest.approx(np.std(data), rel=1e-9)
    assert got["mean"] == pytest.approx(np.mean(data), rel=1e-15)
    naive = np.mean(data ** 2) - np.mean(data) ** 2  # what a naive merge would give
    assert abs(naive - np.var(data)) > 1e-3


def test_integer_array_stats_keep_integers(tmp_path):
    data = np.arange(-500, 100_000, 3, dtype=np.int64)
    np.save(tmp_path / "ints.npy", data)
    got = batch_json(tmp_path / "ints.npy", "--map", "stats", "--chunks", 5)
    assert got["sum"] == int(data.sum()) and isinstance(got["sum"], int)
    assert (got["min"], got["max"]) == (int(data.min()), int(data.max()))
    assert got["var"] == pytest.approx(np.var(data), rel=1e-12)


def test_histogram_matches_numpy_with_found_and_given_range():
    got = batch_json(NUMBERS, "--map", "histogram", "--bins", 17, "--chunks", 6)
    counts, edges = np.histogram(A, bins=17)
    assert got["counts"] == counts.tolist()
    assert got["edges"] == edges.tolist()
    got = batch_json(NUMBERS, "--map", "histogram", "--bins", 4, "--range=-10,100")
    counts, edges = np.histogram(A, bins=4, range=(-10, 100))
    assert got["counts"] == counts.tolist() and got["edges"] == edges.tolist()


def test_sort_merges_sorted_chunks(tmp_path):
    got = batch("run", NUMBERS, "--map", "sort", "--chunks", 9, "--output", tmp_path / "s.npy")
    assert got.returncode == 0, got.stderr
    assert np.array_equal(np.load(tmp_path / "s.npy"), np.sort(A))


def test_sort_keeps_numpy_order_for_nan_and_duplicates(tmp_path):
    rng = np.random.default_rng(3)
    data = rng.integers(0, 50, size=5000).astype(float)
    data[rng.integers(0, 5000, size=40)] = np.nan
    np.save(tmp_path / "d.npy", data.reshape(1000, 5))  # 2-D: sorted flat, like axis=None
    got = batch_json(tmp_path / "d.npy", "--map", "sort", "--chunks", 7)
    want = np.sort(data, axis=None)
    assert got[:-40] == want[:-40].tolist()
    assert got[-40:] == [None] * 40  # JSON has no NaN: null, at the end as in numpy


# --- lines and files ---------------------------------------------------------------------

def test_lines_and_words_match_python():
    lines = corpus_lines()
    assert batch_json(CORPUS, "--map", "lines", "--chunks", 9) == len(lines)
    assert batch_json(CORPUS, "--map", "words", "--chunks", 9) == \
        sum(len(line.split()) for line in lines)


def test_wordfreq_matches_counter():
    counts = collections.Counter()
    for line in corpus_lines():
        counts.update(re.findall(r"\w+", line.lower()))
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    assert list(batch_json(CORPUS, "--map", "wordfreq", "--top", 15,
                           "--chunks", 5).items()) == ranked[:15]
    assert batch_json(CORPUS, "--map", "wordfreq", "--top", 0) == dict(ranked)


def test_grep_gives_matching_lines_with_their_index():
    want = [[i, line] for i, line in enumerate(corpus_lines()) if re.search(r"ABC\w*", line)]
    assert want
    assert batch_json(CORPUS, "--map", "grep", "--pattern", r"ABC\w*", "--chunks", 11) == want


def test_sha256_and_size_per_file(tmp_path):
    (tmp_path / "sub").mkdir()
    files = {"b.txt": b"hello\n", "a.bin": os.urandom(70_000), "sub/c.txt": b""}
    for name, content in files.items():
        (tmp_path / name).write_bytes(content)
    got = batch_json(tmp_path, "--map", "sha256")
    want = {str(tmp_path / n): hashlib.sha256(c).hexdigest() for n, c in sorted(files.items())}
    assert got == want and list(got) == sorted(want)
    assert batch_json(tmp_path, "--map", "size") == {str(tmp_path / n): len(c)
                                                     for n, c in files.items()}
    human = batch("run", tmp_path, "--map", "sha256").stdout.splitlines()
    assert human[0] == f"{want[str(tmp_path / 'a.bin')]}  {tmp_path / 'a.bin'}"  # sha256sum


def test_text_builtins_over_files_read_every_file(tmp_path):
    (tmp_path / "one.txt").write_text("alpha beta\nbeta\n")
    (tmp_path / "two.txt").write_text("gamma beta")
    assert batch_json(tmp_path, "--map", "lines") == 3
    assert batch_json(tmp_path, "--map", "wordfreq") == {"beta": 3, "alpha": 1, "gamma": 1}
    assert batch_json(tmp_path, "--map", "grep", "-e", "^g") == \
        [[str(tmp_path / "two.txt"), 1, "gamma beta"]]


# --- reducers ----------------------------------------------------------------------------

NUMS = "".join(f"{i}\n" for i in range(1, 2001))


@pytest.mark.parametrize("reduce, want", [
    ("sum", sum(len(str(i)) for i in range(1, 2001))),
    ("min", 1),
    ("max", 4),
    ("concat", [len(str(i)) for i in range(1, 2001)]),
])
def test_builtin_reducers_over_a_user_mapper(reduce, want):
    assert batch_json("-", "--map", "builtins:len", "--reduce", reduce, "--chunk-size", 300,
                      input=NUMS) == want


def test_merge_adds_counts_of_dict_results(tmp_path):
    (tmp_path / "m.py").write_text("def first(line):\n    return {line[:1]: 1}\n")
    got = batch_json("-", "--map", "m.py:first", "--reduce", "merge", input=NUMS,
                     cwd=tmp_path)
    assert got == dict(collections.Counter(str(i)[0] for i in range(1, 2001)))


def test_reduce_none_runs_for_side_effects_only(tmp_path):
    (tmp_path / "touch.py").write_text(
        "import pathlib\n"
        "def touch(line):\n"
        "    pathlib.Path(line + '.done').write_text('')\n")
    p = batch("run", "-", "--map", "touch:touch", "--reduce", "none", input="x\ny\n", cwd=tmp_path)
    assert p.returncode == 0 and p.stdout == ""
    assert sorted(f.name for f in tmp_path.glob("*.done")) == ["x.done", "y.done"]


def test_user_reducer_and_array_mapper():
    got = batch_json(NUMBERS, "--map", "numpy:sum", "--reduce", "operator:add", "--chunks", 4)
    assert got == pytest.approx(float(A.sum()), rel=1e-12)


def test_builtin_mapper_with_another_reducer_gives_per_chunk_values():
    got = batch_json(NUMBERS, "--map", "mean", "--reduce", "concat", "--chunks", 4)
    assert got == pytest.approx([float(c.mean()) for c in np.array_split(A, 4)], rel=1e-12)


def test_numbers_on_stdin_feed_array_builtins():
    assert batch_json("-", "--map", "sum", input=NUMS) == 2000 * 2001 // 2
    got = batch_json("-", "--map", "stats", "--chunk-size", 128, input=NUMS)
    assert got["mean"] == pytest.approx(1000.5) and got["count"] == 2000
