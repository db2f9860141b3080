"""`batch` when the machine misbehaves around it: closed or failing stdout, full disks,
pipes and FIFOs as INPUT, unreadable files, inputs changed while read (issue 12)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading

import numpy as np
import pytest
from test_cli_support import NUMBERS, env

pytestmark = pytest.mark.timeout(60)


def run_batch(*args, cwd=None, env_extra=None, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "batch", *map(str, args)], text=True,
                          cwd=cwd, env={**env(), **(env_extra or {})}, timeout=60, **kw)


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


def close_stdin():
    os.close(0)


@pytest.mark.parametrize("args, code, reads", [
    (["run", "-", "--map", "count"], 2, "lines"),
    (["run", "--null", "--map", "size"], 2, "file names"),
    (["exec", "echo"], 255, "items"),
    (["exec", "echo", "::::", "-"], 255, "items"),
    (["exec", "--pipe", "wc", "-l"], 255, "--pipe blocks"),
], ids=["run -", "run --null", "exec", "exec :::: -", "exec --pipe"])
def test_closed_stdin_is_one_clear_usage_error(args, code, reads):
    """`<&-`: sys.stdin is None, which was an internal AttributeError; empty input would
    run nothing and say nothing."""
    p = run_batch(*args, preexec_fn=close_stdin, stdout=subprocess.PIPE,
                  stderr=subprocess.PIPE)
    assert p.returncode == code, p.stderr
    assert f"stdin is closed, so there are no {reads} to read" in one_error_line(p.stderr)
    assert p.stdout == ""


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full on this system")
@pytest.mark.parametrize("map_", ["stats", "sort"])
def test_stdout_on_a_full_device_names_stdout_and_the_cause(map_):
    with open("/dev/full", "w") as full:
        p = run_batch("run", NUMBERS, "--map", map_, stdout=full, stderr=subprocess.PIPE)
    assert p.returncode == 1
    assert one_error_line(p.stderr) == ("batch: error: cannot write the result to stdout: "
                                        "No space left on device")


# --- a full disk (case 5) ---------------------------------------------------------------

@pytest.fixture
def small_disk(tmp_path):
    """A 1 MiB tmpfs: full after a few writes, for real ENOSPC. Needs CAP_SYS_ADMIN."""
    disk = tmp_path / "disk"
    disk.mkdir()
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1M", "tmpfs", str(disk)],
                       capture_output=True, text=True, timeout=30)
    if p.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here ({p.stderr.strip() or p.returncode})")
    try:
        yield disk
    finally:
        subprocess.run(["umount", str(disk)], check=True, timeout=30)


@pytest.mark.parametrize("ext", [".npy", ".json", ".csv", ".msgpack"])
def test_output_on_a_full_disk_names_the_file_and_leaves_nothing(small_disk, ext):
    out = small_disk / f"sorted{ext}"  # 250 000 values: about 2 MB as .npy
    p = run_batch("run", NUMBERS, "--map", "sort", "--output", out, capture_output=True)
    assert p.returncode == 1
    assert one_error_line(p.stderr) == (f"batch: error: cannot write {out}: "
                                        f"No space left on device")
    assert os.listdir(small_disk) == []


def test_sort_spilling_onto_a_full_disk_names_the_run_file(small_disk):
    p = run_batch("run", NUMBERS, "--map", "sort", "--output", small_disk.parent / "s.npy",
                  capture_output=True, env_extra={"TMPDIR": str(small_disk)})
    assert p.returncode == 1
    line = one_error_line(p.stderr)
    assert "No space left on device" in line and f"'{small_disk}/batch-sort-" in line
    assert "requested and" not in line
    assert os.listdir(small_disk) == [] and not (small_disk.parent / "s.npy").exists()


def test_checkpoint_on_a_full_disk_names_its_file(small_disk):
    big = small_disk.parent / "big.npy"
    np.save(big, np.arange(300_000, dtype=np.float64))
    p = run_batch("run", big, "--map", "sort", "--chunks", 4, "--checkpoint",
                  small_disk / "ck", "--output", small_disk.parent / "s.npy",
                  capture_output=True)
    assert p.returncode == 1
    assert f"{small_disk}/ck" in one_error_line(p.stderr)
    assert "No space left on device" in p.stderr


def test_joblog_on_a_full_disk_names_its_file(small_disk):
    with open(small_disk / "filler", "wb", buffering=0) as f:  # every block taken
        with pytest.raises(OSError):
            while True:
                f.write(b"\0" * 4096)
    p = run_batch("run", NUMBERS, "--map", "stats", "--chunks", 2000, "--joblog",
                  small_disk / "jobs.tsv", "--format", "json", capture_output=True)
    assert p.returncode == 1
    assert one_error_line(p.stderr).startswith(
        f"batch: error: --joblog {small_disk}/jobs.tsv: cannot write: No space left")


# --- unreadable files and folders (case 10) ----------------------------------------------

LONG = "a-file-with-a-name-long-enough-that-a-cut-at-57-characters-loses-it.txt"


@pytest.fixture
def unprivileged(tmp_path):
    """The command prefix that makes permission bits bind: nothing for a normal user; as
    root, setpriv without the two capabilities that override them."""
    if os.geteuid() != 0:
        return []
    prefix = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search"]
    probe = tmp_path / "probe"
    probe.write_text("x")
    probe.chmod(0)
    try:
        p = subprocess.run([*prefix, "cat", str(probe)], capture_output=True, timeout=30)
    except FileNotFoundError:
        pytest.skip("running as root without setpriv: permission bits do not bind")
    if p.returncode == 0:
        pytest.skip("running as root and setpriv cannot drop CAP_DAC_OVERRIDE here")
    return prefix


@pytest.fixture
def guarded(tmp_path):
    """A folder with three readable files, an unreadable file with a long name deep
    inside, and an unreadable subfolder; permissions are put back for tmp_path's cleanup."""
    root = tmp_path / "tree"
    (root / "deep" / "deeper").mkdir(parents=True)
    (root / "closed").mkdir()
    for name in ("a.txt", "b.txt", "c.txt"):
        (root / name).write_text("xy\n")
    secret = root / "deep" / "deeper" / LONG
    secret.write_text("hidden\n")
    (root / "closed" / "inside.txt").write_text("also hidden\n")
    secret.chmod(0)
    (root / "closed").chmod(0)
    try:
        yield root
    finally:
        (root / "closed").chmod(0o755)
        secret.chmod(0o644)


def run_as(prefix, *args, **kw):
    return subprocess.run([*prefix, sys.executable, "-m", "batch", *map(str, args)],
                          text=True, env=env(), timeout=60, capture_output=True, **kw)


def test_unreadable_paths_in_a_folder_are_named_in_full_and_fail(unprivileged, guarded):
    p = run_as(unprivileged, "run", guarded, "--map", "size", "--reduce", "sum")
    assert p.returncode == 2
    line = one_error_line(p.stderr)
    assert "2 unreadable paths" in line and "--keep-going skips them" in line
    assert f"{guarded}/deep/deeper/{LONG}: Permission denied" in line
    assert f"{guarded}/closed: Permission denied" in line
    assert p.stdout == ""


def test_keep_going_skips_unreadable_paths_and_names_each(unprivileged, guarded):
    p = run_as(unprivileged, "run", guarded, "--map", "size", "--reduce", "sum",
               "--keep-going", "--format", "json")
    assert p.returncode == 0, p.stderr
    assert sorted(json.loads(p.stdout)) == [[3, str(guarded / n)] for n in ("a.txt", "b.txt",
                                                                            "c.txt")]
    warnings = sorted(p.stderr.splitlines())
    assert warnings == sorted([f"batch: warning: skipped {guarded}/closed: Permission denied",
                               f"batch: warning: skipped {guarded}/deep/deeper/{LONG}: "
                               f"Permission denied"])


def test_unreadable_files_from_a_glob_and_from_null_are_named_in_full(unprivileged, guarded):
    p = run_as(unprivileged, "run", f"{guarded}/**/*.txt", "--map", "size")
    assert p.returncode == 2
    line = one_error_line(p.stderr)
    assert "2 unreadable paths" in line
    assert f"{guarded}/deep/deeper/{LONG}: Permission denied" in line
    # glob itself passes over a folder it cannot list: its files would be lost in silence
    assert f"{guarded}/closed: Permission denied" in line
    names = "\0".join(str(p) for p in [guarded / "a.txt", guarded / "deep" / "deeper" / LONG])
    p = run_as(unprivileged, "run", "--null", "--map", "size", input=names)
    assert p.returncode == 2
    assert f"{guarded}/deep/deeper/{LONG}: Permission denied" in one_error_line(p.stderr)


@pytest.mark.parametrize("pattern", ["*/*.txt", "closed/*.txt", "*/inside.txt"])
def test_a_folder_a_glob_cannot_list_is_named_and_keep_going_skips_it(unprivileged, guarded,
                                                                      pattern):
    p = run_as(unprivileged, "run", pattern, "--map", "size", cwd=guarded)
    assert p.returncode == 2
    assert "closed: Permission denied" in one_error_line(p.stderr)
    p = run_as(unprivileged, "run", "*.txt", "--map", "size", "--format", "json",
               cwd=guarded)  # the closed folder is not the pattern's business
    assert (p.returncode, p.stderr) == (0, "")
    assert json.loads(p.stdout) == {"a.txt": 3, "b.txt": 3, "c.txt": 3}
    (guarded / "deep" / "d.txt").write_text("abcd\n")
    p = run_as(unprivileged, "run", f"{guarded}/*/*.txt", "--map", "size", "--keep-going",
               "--format", "json")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout) == {f"{guarded}/deep/d.txt": 5}
    assert p.stderr.splitlines() == [f"batch: warning: skipped {guarded}/closed: "
                                     "Permission denied"]


def test_a_file_gone_when_a_worker_reads_it_is_named_in_full(tmp_path):
    """Listed, then deleted (or made unreadable) before its worker reads it: the item
    error keeps the whole name, where it used to be cut to 57 characters."""
    from batch.cli.run import _text_ops
    from batch.cli.run._model import ItemError
    gone = tmp_path / "deep" / LONG
    with pytest.raises(ItemError) as info:
        list(_text_ops.lines_of([str(gone)]))
    assert str(info.value) == f"{str(gone)!r}: No such file or directory"


# --- pipes and FIFOs as INPUT (case 9) ---------------------------------------------------

def fd_input(data: bytes):
    """A pipe holding `data`, as `<(cmd)` gives one: (its /dev/fd path, read fd)."""
    r, w = os.pipe()
    os.write(w, data)  # small: fits in the pipe's buffer
    os.close(w)
    return f"/dev/fd/{r}", r


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gzip"])
def test_a_pipe_as_input_is_read_as_a_stream(gz):
    import gzip
    text = "".join(f"{i}\n" for i in range(1, 1001)).encode()
    path, r = fd_input(gzip.compress(text) if gz else text)
    try:
        p = run_batch("run", path, "--map", "stats", "--format", "json", pass_fds=(r,),
                      capture_output=True)
    finally:
        os.close(r)
    assert p.returncode == 0, p.stderr
    got = json.loads(p.stdout)
    assert (got["count"], got["sum"]) == (1000, 500500)


def test_a_named_fifo_as_input_is_read_once_its_writer_comes(tmp_path):
    fifo = tmp_path / "lines"
    os.mkfifo(fifo)
    proc = subprocess.Popen([sys.executable, "-m", "batch", "run", str(fifo), "--map",
                             "count", "--format", "json"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env())
    try:
        with open(fifo, "w") as f:  # waits until batch opens it for reading
            f.write("1\n2\n3\n")
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == 0, err
    assert json.loads(out) == 3


def test_a_fifo_named_like_an_array_is_refused_without_waiting(tmp_path):
    fifo = tmp_path / "data.npy"
    os.mkfifo(fifo)
    p = run_batch("run", fifo, capture_output=True)
    assert p.returncode == 2
    assert "is a pipe, and an array input is memory-mapped" in one_error_line(p.stderr)


def test_histogram_of_a_pipe_needs_a_range():
    path, r = fd_input(b"1\n2\n3\n")
    try:
        p = run_batch("run", path, "--map", "histogram", pass_fds=(r,), capture_output=True)
    finally:
        os.close(r)
    assert p.returncode == 2
    assert "--range LO,HI" in one_error_line(p.stderr)


def test_a_fifo_inside_a_folder_is_left_out_not_waited_on(tmp_path):
    (tmp_path / "a.txt").write_text("xyz")
    os.mkfifo(tmp_path / "pipe")
    p = run_batch("run", tmp_path, "--map", "size", "--format", "json", capture_output=True)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout) == {str(tmp_path / "a.txt"): 3}


# --- an input changed while it is read (case 8) ------------------------------------------

CHANGE = """
import os
import numpy as np
PATH = {path!r}

def lines(line):
    if line == "1" and os.path.getsize(PATH) > 100:  # the first chunk's worker
        {change}
    return 1

def rows(chunk):
    if chunk[0] == 0:
        with open(PATH, "r+b") as f:  # rewrite the data in place: same size, new values
            f.seek(-8 * 1000, 2)
            f.write(np.full(1000, 7.0).tobytes())
    return float(chunk.sum())
"""


@pytest.mark.parametrize("change, why", [
    ("os.truncate(PATH, 50)", "its size went from"),
    ("open(PATH, 'w').write('\\n'.join(['9'] * 20000) + '\\n')", "its size went from"),
    ("os.rename(PATH + '.new', PATH)", "another file was put in its place"),
], ids=["truncated", "rewritten", "replaced"])
def test_a_text_input_changed_while_read_fails_clearly(tmp_path, change, why):
    data = tmp_path / "numbers.txt"
    data.write_text("".join(f"{i}\n" for i in range(1, 20001)))
    (tmp_path / "numbers.txt.new").write_text("".join(f"{i}\n" for i in range(1, 20001)))
    (tmp_path / "m.py").write_text(CHANGE.format(path=str(data), change=change))
    out = tmp_path / "n.json"
    p = run_batch("run", data, "--map", "m.py:lines", "--reduce", "sum", "--chunks", 8,
                  "-j", "2", "--output", out, cwd=tmp_path, capture_output=True)
    assert p.returncode == 2, p.stdout + p.stderr
    line = one_error_line(p.stderr)
    assert f"{data} changed while batch read it ({why}" in line
    assert not out.exists()


def test_an_array_input_rewritten_while_read_fails_clearly(tmp_path):
    data = tmp_path / "a.npy"
    np.save(data, np.arange(100_000, dtype=np.float64))
    (tmp_path / "m.py").write_text(CHANGE.format(path=str(data), change="pass"))
    p = run_batch("run", data, "--map", "m.py:rows", "--reduce", "sum", "--chunks", 8,
                  "-j", "2", cwd=tmp_path, capture_output=True)
    assert p.returncode == 2, p.stdout + p.stderr
    assert "it was rewritten (its modification time moved)" in one_error_line(p.stderr)


def test_an_unchanged_input_is_not_reported(tmp_path):
    data = tmp_path / "numbers.txt"
    data.write_text("".join(f"{i}\n" for i in range(1, 20001)))
    p = run_batch("run", data, "--map", "sum", "--chunks", 8, "--format", "json",
                  capture_output=True)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout) == 20000 * 20001 // 2


def test_output_onto_a_fifo_is_written_into_not_replaced(tmp_path):
    """A FIFO (like /dev/stdout) is written directly: renaming a temporary file over it
    would replace the FIFO itself, and its reader would get nothing."""
    fifo = tmp_path / "out.json"
    os.mkfifo(fifo)
    got = []
    reader = threading.Thread(target=lambda: got.append(open(fifo, "rb").read()), daemon=True)
    reader.start()
    p = run_batch("run", NUMBERS, "--output", fifo, capture_output=True)
    if p.returncode != 0:  # batch never opened it: let the reader go
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
    reader.join(30)
    assert p.returncode == 0, p.stderr
    assert json.loads(got[0])["count"] == 250000
    assert os.path.exists(fifo) and not os.path.isfile(fifo)  # still the FIFO

@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full on this system")
def test_exec_output_on_a_full_device_names_the_job_and_stdout():
    with open("/dev/full", "w") as full:
        p = run_batch("exec", "-j1", "echo", ":::", "a", "b", stdout=full,
                      stderr=subprocess.PIPE)
    assert p.returncode == 255
    assert one_error_line(p.stderr) == ("batch: error: cannot write job 1's output to "
                                        "stdout: No space left on device")
