"""The public surface is what __all__ says, sorted, and nothing leaks into it."""

import pytest

import batch


def test_all_is_sorted_and_complete():
    assert batch.__all__ == sorted(batch.__all__)
    public = {name for name in dir(batch) if not name.startswith("_")}
    modules = {name for name in public if type(getattr(batch, name)).__name__ == "module"}
    assert public - modules - {"annotations"} == set(batch.__all__)


def test_import_batch_stays_light():
    import subprocess
    import sys
    code = "import batch, sys; print(sorted(m for m in ('tqdm', 'dask') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         timeout=60)
    assert out.stdout.strip() == "[]"


def test_batch_exec_loads_neither_numpy_nor_msgpack():
    # `batch exec` runs no Python worker: numpy alone was a third of its start-up.
    import subprocess
    import sys
    code = ("import sys; import batch.cli, batch.cli.exec._command; "
            "print(sorted(m for m in ('numpy', 'msgpack', 'tqdm') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         timeout=60)
    assert out.stdout.strip() == "[]"


def test_batch_exec_starts_without_the_heavy_standard_modules():
    # dataclasses (with inspect, ast, dis, tokenize), typing and shutil (with zlib, bz2,
    # lzma) were 15-20 ms of the 0.1 s start-up of every `batch exec`, none of it needed.
    import subprocess
    import sys
    code = ("import sys, batch.cli; from batch.cli import _parser, exec, run, info, bench; "
            "_parser.build((run, exec, info, bench)).parse_args(['exec', 'true']); "
            "import batch.cli.exec._command; "
            "print(sorted(m for m in ('dataclasses', 'inspect', 'typing', 'shutil') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60)
    assert out.stdout.strip() == "[]"


def test_help_wraps_at_the_terminal_width_it_is_given():
    import os
    import subprocess
    import sys
    env = {**os.environ, "COLUMNS": "60"}
    out = subprocess.run([sys.executable, "-m", "batch", "exec", "--help"], env=env,
                         capture_output=True, text=True, check=True, timeout=60).stdout
    lines = [line for line in out.splitlines() if not line.startswith("usage:")]
    assert "--timeout" in out and max(map(len, lines)) <= 60
    wide = subprocess.run([sys.executable, "-m", "batch", "exec", "--help"],
                          env={**env, "COLUMNS": "150"}, capture_output=True, text=True,
                          check=True, timeout=60).stdout
    assert max(map(len, wide.splitlines())) > 60


def test_lazy_members_resolve_and_are_listed():
    assert "Pool" in dir(batch) and "Executor" in dir(batch)
    assert batch.Pool.__name__ == "Pool" and batch.Executor.__name__ == "Executor"


def test_errors_share_one_root():
    for name in ("WorkerError", "WorkerCrashed", "TaskTimeout", "ResultError"):
        assert issubclass(getattr(batch, name), batch.BatchError)


FIRST_CALLS = {
    "pmap": "batch.pmap(abs, [-1, -2], workers=2) == [1, 2]",
    "imap": "list(batch.imap(abs, [-1, -2], workers=2)) == [1, 2]",
    "map_reduce": "batch.map_reduce(sum, operator.add, [1, 2, 3], workers=2) == 6",
    "map_blocks": "(batch.map_blocks(np.negative, np.arange(4.0), workers=2) "
                  "== -np.arange(4.0)).all()",
    "pexec": "batch.pexec(['echo', '{}'], ['a'])[0].stdout == b'a\\n'",
    "iexec": "next(batch.iexec(['echo', '{}'], ['a'])).stdout == b'a\\n'",
    "Pool": "batch.Pool(2).__enter__().map(abs, [-1]) == [1]",
    "Executor": "batch.Executor(2).submit(abs, -1).result() == 1",
}


@pytest.mark.timeout(120)
@pytest.mark.parametrize("name", sorted(FIRST_CALLS))
def test_each_entry_point_works_as_the_first_call_of_a_program(name):
    """Pool and Executor load lazily: a function that named one before it was loaded
    failed with NameError when it was the program's first call (map_blocks did)."""
    import subprocess
    import sys
    code = ("import operator, sys; import numpy as np; import batch; "
            f"sys.exit(0 if {FIRST_CALLS[name]} else 3)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=100)
    assert out.returncode == 0, out.stderr


def test_every_entry_point_has_a_first_call_test():
    callables = {n for n in batch.__all__ if callable(getattr(batch, n))
                 and not isinstance(getattr(batch, n), type)
                 or n in ("Pool", "Executor")}
    assert callables - {"usable_cpus"} == set(FIRST_CALLS)
