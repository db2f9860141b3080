"""python -m batch._dev.test_on: the suite on another interpreter, one line of result."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import sysconfig

import pytest

from batch._bench import _interpreters
from batch._dev import test_on


def test_probe_says_what_this_interpreter_is():
    info = _interpreters.probe(sys.executable, cwd=test_on.ROOT)
    assert info["version"] == ".".join(map(str, sys.version_info[:3]))
    assert info["free_threaded"] == bool(sysconfig.get_config_var("Py_GIL_DISABLED"))
    assert info["label"].startswith(info["version"])
    assert info["modules"]["numpy"] and info["batch_error"] is None
    assert os.path.samefile(os.path.dirname(os.path.dirname(info["batch_file"])),
                            test_on.ROOT)


def test_probe_of_something_that_is_no_python_says_so(tmp_path):
    with pytest.raises(_interpreters.NotAnInterpreter, match="cannot run"):
        _interpreters.probe(str(tmp_path / "python9"))
    with pytest.raises(_interpreters.NotAnInterpreter, match="not a Python"):
        _interpreters.probe("/bin/false")


@pytest.mark.parametrize("line, counts", [
    ("===== 2 failed, 310 passed, 29 skipped, 1 warning in 96.12s (0:01:36) =====",
     "2 failed, 310 passed, 29 skipped, 1 warning in 96.12s (0:01:36)"),
    ("7 passed in 0.05s", "7 passed in 0.05s"),
    ("3 deselected in 0.01s", "3 deselected in 0.01s"),
])
def test_summary_is_pytests_closing_line(tmp_path, line, counts):
    log = tmp_path / "log"
    log.write_text(f"....F\nFAILED tests/x.py::t - boom\n{line}\n")
    assert test_on.summary(str(log)) == counts


def test_summary_of_a_run_that_never_finished_says_so(tmp_path):
    log = tmp_path / "log"
    log.write_text("Fatal Python error: Segmentation fault\n")
    assert "no pytest summary" in test_on.summary(str(log))


@pytest.mark.timeout(120)
def test_one_command_runs_the_suite_and_prints_one_line(tmp_path):
    # A venv without pip whose site-packages sees this one's: everything imports, so
    # test_on must reuse it as it is (no pip run, which would need the network).
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    lib = next((venv / "lib").iterdir()) / "site-packages"
    (lib / "outer.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    run = [sys.executable, "-m", "batch._dev.test_on", sys.executable, "--venv", str(venv),
           "--", "tests/test_wire.py"]
    done = subprocess.run(run, capture_output=True, text=True, cwd=test_on.ROOT, timeout=100)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 1 and "installing" not in done.stdout, done.stdout
    assert re.search(r"\b\d+ passed\b", lines[0]) and "failed" not in lines[0], lines[0]
    assert lines[0].startswith(_interpreters.probe(sys.executable)["label"])
    assert (tmp_path / "venv.log").exists()

    # A run with nothing to test is not a pass, and neither is a path that is no Python.
    nothing = subprocess.run(run + ["-k", "no_such_test_anywhere"], capture_output=True,
                             text=True, cwd=test_on.ROOT, timeout=100)
    assert nothing.returncode == 1 and "deselected" in nothing.stdout
    bad = subprocess.run([sys.executable, "-m", "batch._dev.test_on", "/bin/false"],
                         capture_output=True, text=True, cwd=test_on.ROOT, timeout=100)
    assert bad.returncode == 2 and "ERROR" in bad.stdout
