"""`batch info`, and the command's entry points."""

from __future__ import annotations

import json
import os
import tomllib

import batch
from test_cli_support import ROOT, batch as run_batch


def test_info_reports_cpus_backend_and_blas():
    facts = json.loads(run_batch("info", "--format", "json").stdout)
    assert facts["batch"] == batch.__version__
    assert facts["usable_cpus"] == batch.usable_cpus()
    assert facts["os_cpu_count"] == os.cpu_count()
    assert facts["default_backend"] in facts["backends"]
    # the BLAS numpy loads, whether or not the CLI had imported numpy by then
    import numpy  # noqa: F401
    import threadpoolctl
    here = {lib["internal_api"] for lib in threadpoolctl.threadpool_info()
            if lib.get("user_api") == "blas"}
    assert {lib["internal_api"] for lib in facts["blas"]} == here
    text = run_batch("info").stdout
    for label in ("usable CPUs", "fork available", "default backend", "BLAS"):
        assert label in text


def test_console_script_is_the_cli_main():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert project["project"]["scripts"]["batch"] == "batch.cli:main"
    assert "batch.cli" in project["tool"]["setuptools"]["packages"]
    from batch.cli import main
    assert main(["--version"]) == 0
