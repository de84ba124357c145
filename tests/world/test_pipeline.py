"""spotmax_world.pipeline: process hygiene of the rulebook runner."""

from __future__ import annotations

import subprocess
import time

from spotmax_world.pipeline import descendants


def test_descendants_include_processes_that_left_the_session():
    # ansible-runner starts playbooks with setsid: killpg on the rulebook's group would miss them.
    parent = subprocess.Popen(["bash", "-c", "setsid sleep 60 & echo $!; wait"], stdout=subprocess.PIPE, text=True)
    try:
        moved = int(parent.stdout.readline())
        deadline = time.monotonic() + 10
        while moved not in descendants(parent.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert moved in descendants(parent.pid)
        assert parent.pid not in descendants(parent.pid)
    finally:
        for pid in descendants(parent.pid):
            subprocess.run(["kill", "-9", str(pid)], check=False)
        parent.kill()
        parent.wait(timeout=10)
