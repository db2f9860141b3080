"""Other Python interpreters: what one is, asked of itself, before anything runs on it.

`batch bench --python PATH` and `python -m batch._dev.test_on PATH` both start a process
under an interpreter that is not the one running them. Each first runs PROBE there, so a
missing numpy, a path that is no Python or a Python too old for batch is one clear error
before the first measurement, not a failed row after ten minutes; and so every result is
labelled with what the interpreter really is (3.13.15t with the GIL off), not with the
path it was found at.

Whether the GIL is on is asked after importing batch and numpy, as a run would: on a
free-threaded build, importing an extension module that does not declare itself safe
without the GIL turns the GIL back on for the whole process (PEP 703), and a label taken
before that would claim free threading for a run that had none.
"""

from __future__ import annotations

import json
import os
import subprocess

# What the probe reports as installed: batch's dependencies, pytest, and the peers the
# benchmarks compare against (a peer missing in one interpreter is skipped there).
MODULES = ("numpy", "msgpack", "tqdm", "threadpoolctl", "pytest", "pytest_timeout", "dask",
           "distributed", "joblib", "mpire", "matplotlib")

PROBE = r"""
import importlib.metadata, importlib.util, json, platform, sys, sysconfig
out = {"version": platform.python_version(), "implementation": platform.python_implementation(),
       "executable": sys.executable, "prefix": sys.prefix, "base_prefix": sys.base_prefix,
       "version_info": list(sys.version_info[:2]),
       "free_threaded": bool(sysconfig.get_config_var("Py_GIL_DISABLED")), "modules": {},
       "batch_error": None}
for name in MODULES:
    try:
        found = importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        found = False
    if found:
        try:
            out["modules"][name] = importlib.metadata.version(name.replace("_", "-"))
        except importlib.metadata.PackageNotFoundError:
            out["modules"][name] = "?"
    else:
        out["modules"][name] = None
if out["modules"]["numpy"] and out["modules"]["msgpack"]:
    try:
        import batch, numpy
        out["batch_file"] = batch.__file__
    except Exception as exc:
        out["batch_error"] = f"{type(exc).__name__}: {exc}"
out["gil_enabled"] = getattr(sys, "_is_gil_enabled", lambda: True)()
print(json.dumps(out))
"""


class NotAnInterpreter(ValueError):
    """PATH could not be run, or is not a Python that batch runs on."""


def probe(path: str, *, env: dict | None = None, cwd: str | None = None) -> dict:
    """What the interpreter at `path` is and has, with `label` and `kind` added."""
    script = f"MODULES = {MODULES!r}\n{PROBE}"
    try:
        done = subprocess.run([path, "-c", script], capture_output=True, text=True,
                              timeout=60, env=env, cwd=cwd)
    except (OSError, subprocess.SubprocessError) as exc:
        raise NotAnInterpreter(f"cannot run {path}: {exc}") from exc
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise NotAnInterpreter(f"{path} is not a Python batch can use: {last}")
    try:
        info = json.loads(done.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError) as exc:
        raise NotAnInterpreter(f"{path} did not answer the probe: {done.stdout[:200]!r}") \
            from exc
    info["path"] = path
    info["label"] = label(info)
    info["kind"] = kind(info)
    return info


def label(info: dict) -> str:
    """3.11.7, 3.13.15 or 3.13.15t: the version, with a t for a free-threaded build."""
    return info["version"] + ("t" if info["free_threaded"] else "")


def kind(info: dict) -> str:
    if not info["free_threaded"]:
        return "GIL"
    return "free-threaded, GIL off" if not info["gil_enabled"] else \
        "free-threaded build, GIL re-enabled by an extension module"


def unique_labels(infos: list[dict]) -> None:
    """Make every label distinct (two venvs of one interpreter: 3.13.15t, 3.13.15t#2)."""
    seen: dict[str, int] = {}
    for info in infos:
        n = seen.get(info["label"], 0) + 1
        seen[info["label"]] = n
        if n > 1:
            info["label"] = f"{info['label']}#{n}"


def which(path: str) -> str:
    """`path` as given if it names a file; else looked up on PATH like a shell would."""
    if os.sep in path:
        return path
    import shutil
    return shutil.which(path) or path
