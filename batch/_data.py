"""Where the sample data is: inside the installed package, or at the top of a checkout."""

from __future__ import annotations

from pathlib import Path

_HERE = Path(__file__).resolve().parent


def sample_dir() -> Path:
    installed = _HERE / "data"          # pip install . maps data/ to batch/data/
    if installed.is_dir():
        return installed
    return _HERE.parent / "data"         # a checkout, or an editable install


def sample(name: str) -> Path:
    path = sample_dir() / name
    if not path.exists():
        raise FileNotFoundError(f"sample data {name!r} is missing from {sample_dir()}")
    return path
