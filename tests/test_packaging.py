"""pyproject.toml in the form that builds without setuptools' deprecation warnings (issue 9).

A real build is a pip run in a fresh venv (seconds to a minute, needs the index), so
this checks what setuptools >= 77 warns about instead: the license as a PEP 639 SPDX
string with its files named, not the deprecated `{ text = ... }` table.
"""

from __future__ import annotations

import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def pyproject():
    tomllib = pytest.importorskip("tomllib", reason="tomllib is Python 3.11+")
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_license_is_an_spdx_string_with_its_files(pyproject):
    project = pyproject["project"]
    assert isinstance(project["license"], str), "a table is deprecated: use an SPDX string"
    assert project["license"] == "MIT"
    assert project["license-files"] and all((ROOT / f).is_file()
                                            for f in project["license-files"])
    assert "MIT License" in (ROOT / "LICENSE").read_text()
    assert not any(c.startswith("License ::") for c in project.get("classifiers", [])), \
        "a license classifier next to an SPDX license is an error in setuptools >= 77"


def test_build_asks_for_a_setuptools_that_reads_spdx_licenses(pyproject):
    (spec,) = [r for r in pyproject["build-system"]["requires"] if r.startswith("setuptools")]
    version = re.fullmatch(r"setuptools>=(\d+)(\.\d+)*", spec)
    assert version and int(version.group(1)) >= 77, spec


def test_every_package_folder_is_listed_to_be_shipped(pyproject):
    # `packages` is explicit: a new folder left out of it installs as nothing under
    # `pip install .` (the editable install of a checkout hides that), and every run
    # then fails on its import. The _platform package was nearly shipped so.
    listed = set(pyproject["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(ROOT).parts)
             for p in (ROOT / "batch").rglob("__init__.py")}
    assert found - listed == set()
