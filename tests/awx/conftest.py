"""Fixtures for the AWX / EDA controller tests: the built collection and the awx_configure data."""

from __future__ import annotations

import pathlib
import sys
from typing import Any

import pytest
import yaml

from spotmax_world.pipeline import install_collection

ROOT = pathlib.Path(__file__).resolve().parents[2]
BIN = pathlib.Path(sys.executable).parent
VARS_FILE = ROOT / "playbooks" / "vars" / "awx_configure.yml"


class _Loader(yaml.SafeLoader):
    """YAML with Ansible's ``!unsafe`` tag (a plain string here)."""


_Loader.add_constructor("!unsafe", lambda loader, node: loader.construct_scalar(node))


def load_yaml(path: pathlib.Path) -> Any:
    return yaml.load(path.read_text(), Loader=_Loader)  # noqa: S506 - a SafeLoader subclass


@pytest.fixture(name="collection_build", scope="session")
def collection_build_fixture(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    """The collection as ansible-galaxy builds it from this checkout (dist/), installed (collections/)."""
    workdir = tmp_path_factory.mktemp("collection")
    install_collection(ROOT, workdir)
    return workdir


@pytest.fixture(name="tarball", scope="session")
def tarball_fixture(collection_build: pathlib.Path) -> pathlib.Path:
    (tarball,) = (collection_build / "dist").glob("spotmax-maxgroup-*.tar.gz")
    return tarball


@pytest.fixture(name="awx_data", scope="session")
def awx_data_fixture() -> dict[str, Any]:
    data: dict[str, Any] = load_yaml(VARS_FILE)
    return data
