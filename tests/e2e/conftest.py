"""End-to-end tests: the built collection, installed, run by ansible-playbook against the world."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import boto3
import pytest

from spotmax_world.world import World

ROOT = pathlib.Path(__file__).resolve().parents[2]
BIN = pathlib.Path(sys.executable).parent


@pytest.fixture(name="world")
def world_fixture(tmp_path):
    with World(tmp_path / "world") as world:
        yield world


@pytest.fixture(name="aws")
def aws_fixture(world):
    env = world.environment()

    def client(service):
        return boto3.client(
            service,
            endpoint_url=env["AWS_ENDPOINT_URL"],
            region_name=env["AWS_REGION"],
            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        )

    return client


def run_playbook(world, playbook, *args, cwd=ROOT / "demo"):
    """Run ansible-playbook against the world; the collection comes from ANSIBLE_COLLECTIONS_PATH."""
    env = {**os.environ, **world.environment()}
    return subprocess.run(
        [str(BIN / "ansible-playbook"), str(playbook), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
