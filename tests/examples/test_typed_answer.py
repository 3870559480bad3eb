"""examples/typed_answer.py: the answer is an Invoice; a wrong total is sent back with what
failed, the corrected answer validated; the attempts are in the stored thread."""

from __future__ import annotations

import io
import re
from typing import TYPE_CHECKING

import pytest

from agentrt.cli import main

from .support import offline_env, run_example

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.integration


def test_typed_answer_retries_then_validates(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    env = offline_env(tmp_path)
    out = run_example("typed_answer", env=env).stdout
    assert out.count("  ... streaming: 2 line(s) so far\n") == 2  # each attempt streams
    assert ("  the model was told: - (the whole answer): Value error, total 76.97 is not "
            "the sum of the lines (78.97)\n") in out
    assert "Invoice for Alice, 2 lines, total 78.97 EUR\n" in out
    found = re.search(r"\[attempts 2, model turns 3, thread (thr_\w+)\]\n$", out)
    assert found is not None, out

    monkeypatch.setenv("AGENTRT_SQLITE_PATH", env["AGENTRT_SQLITE_PATH"])
    shown = io.StringIO()
    assert main(["threads", "show", found[1]], stdout=shown) == 0
    lines = shown.getvalue().splitlines()
    assert lines[6].startswith('[4] assistant: {"customer": "Alice", "currency": "EUR", '
                               '"total": 76.97')
    assert lines[7].startswith("[5] user: Your answer is not a valid Invoice: - (the whole "
                               "answer): Value error, total 76.97")
    assert lines[8].startswith('[6] assistant: {"customer": "Alice", "currency": "EUR", '
                               '"total": 78.97')
