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


def test_errors_share_one_root():
    for name in ("WorkerError", "WorkerCrashed", "TaskTimeout", "ResultError"):
        assert issubclass(getattr(batch, name), batch.BatchError)
