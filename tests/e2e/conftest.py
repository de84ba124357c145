"""End-to-end tests: the built collection, installed, run by ansible-playbook against the world."""

from __future__ import annotations

import os
import pathlib
import re
import subprocess
import sys

import boto3
import pytest
import requests

from spotmax_world.pipeline import install_collection
from spotmax_world.world import World

ROOT = pathlib.Path(__file__).resolve().parents[2]
BIN = pathlib.Path(sys.executable).parent
# AWS actions that change something, as the world's request counter names them (service:Action).
WRITE_VERB = re.compile(
    r"^[a-z0-9]+:(Create|Update|Put|Delete|Set|Attach|Detach|Enable|Disable|Modify|Run|Terminate|Complete|Record|"
    r"Suspend|Resume|Register|Deregister|Tag|Untag|Add|Remove)"
)


@pytest.fixture(name="collection_build", scope="session")
def collection_build_fixture(tmp_path_factory):
    """The collection as ansible-galaxy builds it from this checkout (dist/), installed (collections/)."""
    workdir = tmp_path_factory.mktemp("collection")
    install_collection(ROOT, workdir)
    return workdir


@pytest.fixture(name="tarball", scope="session")
def tarball_fixture(collection_build):
    return next((collection_build / "dist").glob("spotmax-maxgroup-*.tar.gz"))


@pytest.fixture(name="collections_path", scope="session")
def collections_path_fixture(collection_build):
    return collection_build / "collections"


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


def run_playbook(world, collections_path, playbook, *args, cwd=ROOT / "demo", timeout=300):
    """Run ansible-playbook against the world with the installed tarball."""
    env = {**os.environ, **world.environment(), "ANSIBLE_COLLECTIONS_PATH": str(collections_path)}
    return subprocess.run(
        [str(BIN / "ansible-playbook"), str(playbook), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def aws_calls(world, method="GET"):
    """The world's count of AWS calls by service:Action (DELETE resets it)."""
    response = requests.request(method, f"{world.aws.url}/_spotmax/requests", timeout=10)
    response.raise_for_status()
    return response.json() if method == "GET" else {}


def aws_writes(world):
    """The write calls counted since the last reset."""
    return {call: count for call, count in aws_calls(world).items() if WRITE_VERB.match(call)}
