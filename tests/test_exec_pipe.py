"""`batch exec --pipe`: stdin cut into blocks at record ends, each fed to a job's stdin.

The block cutter is batch/cli/exec/_blocks.py (written on its own branch); the feeding of
blocks into jobs is tested here with a stand-in cutter until then, and end to end with
the real one once it is there.
"""

from __future__ import annotations

import importlib.util
import io
import sys
import types

import pytest
from test_cli_support import batch

from batch import cli

HAS_BLOCKS = importlib.util.find_spec("batch.cli.exec._blocks") is not None
needs_blocks = pytest.mark.skipif(not HAS_BLOCKS, reason="needs batch/cli/exec/_blocks.py")

TEXT = "".join(f"line {i} {'x' * (i % 50)}\n" for i in range(40_000))


def _stand_in_blocks(stream, size, recend):
    """Blocks of about `size` bytes, cut after a record end (the simplest correct cutter)."""
    rest = b""
    while True:
        data = stream.read(size)
        if not data:
            break
        rest += data
        cut = rest.rfind(recend) + len(recend)
        if cut >= len(recend):
            yield rest[:cut]
            rest = rest[cut:]
    if rest:
        yield rest


@pytest.fixture
def stand_in(monkeypatch):
    if not HAS_BLOCKS:
        module = types.ModuleType("batch.cli.exec._blocks")
        module.blocks = _stand_in_blocks
        monkeypatch.setitem(sys.modules, "batch.cli.exec._blocks", module)


def _main(monkeypatch, capfd, stdin: bytes, *args):
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin)))
    code = cli.main(["exec", *map(str, args)])
    out, err = capfd.readouterr()
    return code, out, err


@pytest.mark.timeout(60)
def test_blocks_reach_the_jobs_stdin_whole_and_in_order(monkeypatch, capfd, stand_in,
                                                        tmp_path):
    log = tmp_path / "log.tsv"
    code, out, err = _main(monkeypatch, capfd, TEXT.encode(), "--pipe", "--block", "64k",
                           "-k", "-j2", "--joblog", log, "cat")
    assert code == 0, err
    assert out == TEXT  # every block, each whole, in order
    rows = [line.split("\t") for line in log.read_text().splitlines()[1:]]
    assert len(rows) > 3 and sum(int(r[4]) for r in rows) == len(TEXT)  # Send: bytes in
    assert all(r[4] == r[5] for r in rows)  # cat received what it was sent


@pytest.mark.timeout(60)
def test_pipe_counts_add_up_to_the_single_process_count(monkeypatch, capfd, stand_in):
    code, out, err = _main(monkeypatch, capfd, TEXT.encode(), "--pipe", "--block", "100k",
                           "wc", "-l")
    assert code == 0, err
    counts = [int(n) for n in out.split()]
    assert len(counts) > 1 and sum(counts) == TEXT.count("\n")


@pytest.mark.timeout(60)
def test_pipe_takes_no_items(monkeypatch, capfd, stand_in):
    code, out, err = _main(monkeypatch, capfd, b"", "--pipe", "cat", ":::", "a")
    assert code == 255 and "takes no ::: or :::: items" in err


@needs_blocks
@pytest.mark.timeout(60)
def test_pipe_end_to_end_equals_one_process():
    p = batch("exec", "--pipe", "--block", "50k", "-k", "grep", "-c", "x", input=TEXT)
    assert p.returncode in (0, 1), p.stderr  # grep -c exits 1 for a block without x
    assert sum(map(int, p.stdout.split())) == sum("x" in line for line in TEXT.splitlines())
    p = batch("exec", "--pipe", "--block", "10k", "-k", "-0", "cat",
              input=TEXT.replace("\n", "\0"))
    assert p.stdout == TEXT.replace("\n", "\0")
