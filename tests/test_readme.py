"""Every command in README.md works, run as a newcomer runs it.

Shell blocks marked ```` ```sh runnable ```` run with bash, each in a fresh copy of
the repository (examples, configs, Makefile) whose ``.venv`` is this one, offline
(no API key in the environment). ```` ```python runnable ```` blocks run as scripts
there. ``<!-- expect: TEXT -->`` lines after a block name text its output must
contain, and a ```` ```text ```` block shows output of the runnable block before it,
so it must appear there verbatim. ``make test`` itself is skipped (it would run this
test again). A shell block that is not runnable must be one of ``MANUAL``, with the
reason there.

Two things differ from a newcomer's shell, so that two copies of the suite can run side
by side on a busy machine: the service block's fixed port is replaced by a free one, and
the batch window is widened (``AGENTRT_BATCH_WINDOW``) so that a slow scheduler cannot
split the one batch a block promises. Blocks run for as long as their processes need
(``timeout`` below); every process a block starts is killed with it.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import sys
from dataclasses import dataclass
from pathlib import Path

import processes
import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
VENV = Path(sys.prefix)
# Not run: each needs the network to install the peer frameworks, and minutes.
MANUAL = {"make bench"}

_FENCE = re.compile(r"^```(\w*)([^\n]*)\n(.*?)^```\n((?:<!-- expect: .*? -->\n)*)",
                    re.DOTALL | re.MULTILINE)


@dataclass(frozen=True)
class Block:
    index: int
    lang: str
    tags: frozenset[str]
    body: str
    expect: tuple[str, ...]
    shows: str | None  # a ```text block right after it: output it must contain

    @property
    def runnable(self) -> bool:
        return "runnable" in self.tags

    @property
    def id(self) -> str:
        first = self.body.strip().splitlines()[0] if self.body.strip() else "empty"
        return f"{self.index}-{re.sub(r'[^A-Za-z0-9]+', '-', first)[:40].strip('-')}"


def blocks() -> list[Block]:
    found: list[Block] = []
    for m in _FENCE.finditer(README.read_text(encoding="utf-8")):
        lang, tags, body, expects = m[1], frozenset(m[2].split()), m[3], m[4]
        if lang == "text" and found:
            last = found[-1]
            found[-1] = Block(last.index, last.lang, last.tags, last.body, last.expect, body)
            continue
        found.append(Block(len(found), lang, tags, body,
                           tuple(re.findall(r"<!-- expect: (.*?) -->", expects)), None))
    return found


RUNNABLE = [b for b in blocks() if b.runnable]


def test_every_shell_block_is_run_or_says_why_not() -> None:
    shell = [b for b in blocks() if b.lang == "sh"]
    assert {b.body.strip() for b in shell if not b.runnable} <= MANUAL
    assert len([b for b in shell if b.runnable]) >= 8
    assert shell[0].runnable and shell[0].body.split()[:2] == ["make", "demo"]  # set-up first
    for block in blocks():
        if block.lang == "python" and not block.runnable:
            compile(block.body, f"README block {block.index}", "exec")  # at least valid


def test_the_pointers_lead_somewhere() -> None:
    text = README.read_text(encoding="utf-8")
    named = re.findall(r"`((?:configs|bench|examples)/[\w./]+\.(?:toml|md|py|json))`", text)
    named += [f"examples/{name}" for name in re.findall(r"^\| `(\w+\.py)` \|", text, re.M)]
    assert len(named) > 12
    for path in named:
        if path != "configs/agentrt.toml":  # yours to write: read when it exists
            assert (ROOT / path).is_file(), path


def _copy(tmp_path: Path) -> Path:
    """The repository as a newcomer has it, with this test run's virtual environment."""
    copy = tmp_path / "clone"
    copy.mkdir()
    for name in ("README.md", "Makefile", "pyproject.toml"):
        shutil.copy2(ROOT / name, copy / name)
    for name in ("examples", "configs"):
        shutil.copytree(ROOT / name, copy / name,
                        ignore=shutil.ignore_patterns("__pycache__", "*.db"))
    (copy / ".venv").symlink_to(VENV)
    stamp = VENV / ".installed-dev"
    if stamp.exists():  # installed already: make must not reinstall because of the copy
        old = stamp.stat().st_mtime - 60
        os.utime(copy / "pyproject.toml", (old, old))
    return copy


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("ANTHROPIC_", "AGENTRT_", "VIRTUAL_ENV", "PYTHON"))}
    env["PATH"] = f"{VENV / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["VIRTUAL_ENV"] = str(VENV)
    env["AGENTRT_BATCH_WINDOW"] = "0.5"  # the products batch stays one batch under load
    return env


def _own_port(body: str) -> str:
    """The README's example port, replaced by a free one (another suite may hold 8321)."""
    from redis_support import free_port

    return body.replace("8321", str(free_port())) if "8321" in body else body


def _redis_answers(host: str = "127.0.0.1", port: int = 6379) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@pytest.mark.integration
@pytest.mark.timeout(240)  # a block runs several example processes, one after another
@pytest.mark.parametrize("block", RUNNABLE, ids=[b.id for b in RUNNABLE])
def test_readme_block_runs(block: Block, tmp_path: Path) -> None:
    if "needs-redis" in block.tags and not _redis_answers():
        pytest.skip("this README block needs a redis-server on 127.0.0.1:6379")
    if block.lang == "sh":
        if "make demo" in block.body and not (VENV / ".installed-dev").exists():
            pytest.skip("`make demo` would install the package first (no .installed-dev)")
        lines = _own_port(block.body).splitlines()
        script = "\n".join(line for line in lines if not line.startswith("make test"))
        command = ["bash", "-euo", "pipefail", "-c", script]
    else:
        assert block.lang == "python"
        command = [str(VENV / "bin" / "python"), "readme_snippet.py"]
    copy = _copy(tmp_path)
    (copy / "readme_snippet.py").write_text(block.body, encoding="utf-8")
    proc = processes.run(command, cwd=copy, env=_env(), capture_output=True, text=True,
                         timeout=230)
    report = f"exit {proc.returncode}\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"
    assert proc.returncode == 0, report
    for text in block.expect:
        assert text in proc.stdout, f"expected {text!r}\n{report}"
    if block.shows is not None:
        assert block.shows in proc.stdout, report
    assert "Traceback" not in proc.stderr, report
