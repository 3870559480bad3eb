"""The package metadata uses the current fields: setuptools warns about a deprecated one
on every install (``project.license`` as a TOML table), which a user reads as our bug."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


def test_the_license_is_an_spdx_expression_setuptools_reads_without_a_warning() -> None:
    data = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))
    assert data["project"]["license"] == "MIT"
    # PEP 639 license expressions: setuptools 77 and later
    [setuptools] = [r for r in data["build-system"]["requires"] if r.startswith("setuptools")]
    found = re.fullmatch(r"setuptools>=(\d+)", setuptools)
    assert found is not None and int(found[1]) >= 77
