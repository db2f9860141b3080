"""`batch` when the machine misbehaves around it: closed or failing stdout, full disks,
pipes and FIFOs as INPUT, unreadable files, inputs changed while read (issue 12)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from test_cli_support import NUMBERS, env

pytestmark = pytest.mark.timeout(60)


def run_batch(*args, cwd=None, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "batch", *map(str, args)], text=True,
                          cwd=cwd, env=env(), timeout=60, **kw)


def one_error_line(stderr: str) -> str:
    lines = [l for l in stderr.splitlines() if not l.startswith("batch: no INPUT")]
    assert len(lines) == 1 and lines[0].startswith("batch: error: "), stderr
    assert "internal error" not in stderr and "Traceback" not in stderr
    return lines[0]


def close_stdout():
    os.close(1)


# --- stdout closed or failing (case 4) --------------------------------------------------

def test_closed_stdout_with_output_writes_the_output(tmp_path):
    out = tmp_path / "stats.json"
    p = run_batch("run", NUMBERS, "--output", out, preexec_fn=close_stdout,
                  stderr=subprocess.PIPE)
    assert p.returncode == 0, p.stderr
    assert json.loads(out.read_text())["count"] == np.load(NUMBERS).size


def test_closed_stdout_keeps_a_mapped_functions_prints_out_of_the_results(tmp_path):
    """fd 1 closed would be reused by the next pipe: a worker's result pipe among them."""
    (tmp_path / "m.py").write_text("import os\ndef f(x):\n    os.write(1, b'junk' * 100)\n"
                                   "    return len(x)\n")
    out = tmp_path / "n.json"
    p = run_batch("run", "-", "--map", "m.py:f", "--reduce", "sum", "--chunk-size", 2,
                  "--output", out, cwd=tmp_path, input="a\nbb\nccc\n",
                  preexec_fn=close_stdout, stderr=subprocess.PIPE)
    assert p.returncode == 0, p.stderr
    assert json.loads(out.read_text()) == 6


@pytest.mark.parametrize("args", [["run", NUMBERS], ["run", NUMBERS, "--dry-run"],
                                  ["info"]], ids=["run", "dry-run", "info"])
def test_closed_stdout_without_output_is_one_clear_usage_error(args):
    p = run_batch(*args, preexec_fn=close_stdout, stderr=subprocess.PIPE)
    assert p.returncode == 2
    assert "stdout is closed" in one_error_line(p.stderr)


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full on this system")
@pytest.mark.parametrize("map_", ["stats", "sort"])
def test_stdout_on_a_full_device_names_stdout_and_the_cause(map_):
    with open("/dev/full", "w") as full:
        p = run_batch("run", NUMBERS, "--map", map_, stdout=full, stderr=subprocess.PIPE)
    assert p.returncode == 1
    assert one_error_line(p.stderr) == ("batch: error: cannot write the result to stdout: "
                                        "No space left on device")
