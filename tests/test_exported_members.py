"""The public surface is what __all__ says, sorted, and nothing leaks into it."""

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


def test_lazy_members_resolve_and_are_listed():
    assert "Pool" in dir(batch) and "Executor" in dir(batch)
    assert batch.Pool.__name__ == "Pool" and batch.Executor.__name__ == "Executor"


def test_errors_share_one_root():
    for name in ("WorkerError", "WorkerCrashed", "TaskTimeout", "ResultError"):
        assert issubclass(getattr(batch, name), batch.BatchError)
