"""An example copied into someone's project runs there as it is: offline, from another
working directory, with nothing beside it but what it names (the JIT examples: their
config, its manifest and the tools' package, laid out as in the repository)."""

from __future__ import annotations

import shutil
import sys
from typing import TYPE_CHECKING

import processes
import pytest

from .support import EXAMPLES, ROOT, offline_env, stats_lines

if TYPE_CHECKING:
    import subprocess
    from pathlib import Path

pytestmark = pytest.mark.integration

ALONE = {"shop": 6, "weather_stocks": 4, "products_batch": 4}  # example -> its tool calls
JIT = {"research_assistant": "research_assistant.toml", "content_creator": "content_creator.toml"}


def _run(script: Path, *args: str, cwd: Path, env: dict[str, str]
         ) -> subprocess.CompletedProcess[str]:
    proc = processes.run([sys.executable, str(script), *args], cwd=cwd, env=env,
                         capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"{proc.stdout}\n{proc.stderr}"
    return proc


@pytest.mark.parametrize("name", sorted(ALONE))
def test_a_one_file_example_copied_alone_runs_offline(name: str, tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    copy = project / "main.py"
    shutil.copy(EXAMPLES / f"{name}.py", copy)
    out = _run(copy, cwd=project, env=offline_env(tmp_path)).stdout
    assert [s["tool_calls"] for s in stats_lines(out)] == [ALONE[name]]


def test_inventory_chat_copied_alone_resumes_its_thread_in_a_second_process(
        tmp_path: Path) -> None:
    shutil.copy(EXAMPLES / "inventory_chat.py", tmp_path / "inventory.py")
    out = _run(tmp_path / "inventory.py", "--db", str(tmp_path / "t.db"), cwd=tmp_path,
               env=offline_env(tmp_path)).stdout
    assert "resumed thread" in out and len(stats_lines(out)) == 5


@pytest.mark.parametrize("name", sorted(JIT))
def test_a_jit_example_copied_with_its_config_runs_from_another_directory(
        name: str, tmp_path: Path) -> None:
    project = tmp_path / "project"
    shutil.copytree(EXAMPLES / "jit_tools", project / "examples" / "jit_tools",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(EXAMPLES / f"{name}.py", project / "examples" / f"{name}.py")
    (project / "configs").mkdir()
    for file in (JIT[name], "tools.manifest.json"):
        shutil.copy(ROOT / "configs" / file, project / "configs" / file)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    proc = _run(project / "examples" / f"{name}.py", cwd=elsewhere, env=offline_env(tmp_path))
    # the manifest is found beside the config: nothing is imported to be described
    assert "not_in_manifest" not in proc.stderr
    assert "publisher" in proc.stdout.rsplit("never imported: ", 1)[1]


@pytest.mark.parametrize("name", ["service", "fleet"])
def test_the_service_and_fleet_examples_copied_import_without_a_helper(
        name: str, tmp_path: Path) -> None:
    """They need a server port or Redis to run (tests/examples/test_service.py and
    test_fleet.py run them); copied alone, they import and build what they serve."""
    shutil.copy(EXAMPLES / f"{name}.py", tmp_path / f"{name}.py")
    processes.run([sys.executable, "-c", f"import {name}"], cwd=tmp_path,
                  env=offline_env(tmp_path), capture_output=True, text=True, timeout=60,
                  check=True)
