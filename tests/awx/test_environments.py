"""The execution environment and decision environment definitions: `ansible-builder create` offline.

The definitions read the collection tarball from build/ (``make build``); each test lays the definition, its
requirement files and a freshly built tarball out in a temporary tree the same shape as the repository, so
nothing is read from or written to the checkout's build/.
"""

from __future__ import annotations

import json
import pathlib
import re
import shutil
import subprocess
import tarfile
from typing import Any

import pytest
import yaml
from conftest import BIN, ROOT, load_yaml

GALAXY = yaml.safe_load((ROOT / "galaxy.yml").read_text())
VERSION = GALAXY["version"]
TARBALL_NAME = f"spotmax-maxgroup-{VERSION}.tar.gz"
# A task's module (``- amazon.aws.ec2_instance:``) or an action group (``group/community.aws.aws:``).
FQCN = re.compile(r"^\s*(?:- )?(?:group/)?([a-z][a-z0-9_]*)\.([a-z][a-z0-9_]*)\.[a-z][a-z0-9_]*:\s*$")
OWN = {("ansible", "builtin"), ("spotmax", "maxgroup")}


def _layout(tmp_path: pathlib.Path, tarball: pathlib.Path, definition: str) -> pathlib.Path:
    """The definition and what it reads, at the same relative places as in the repository."""
    src = tmp_path / "src"
    for name in ("requirements.txt", "bindep.txt", "requirements.yml", definition):
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / name, src / name)
    (src / "build").mkdir()
    shutil.copy(tarball, src / "build" / TARBALL_NAME)
    return src / definition


def _create(definition: pathlib.Path, context: pathlib.Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            str(BIN / "ansible-builder"),
            "create",
            "--file",
            str(definition),
            "--context",
            str(context),
            "--output-filename",
            "Containerfile",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _manifest(tarball: pathlib.Path) -> dict[str, Any]:
    with tarfile.open(tarball) as tar:
        member = tar.extractfile("MANIFEST.json")
        assert member is not None
        manifest: dict[str, Any] = json.load(member)
    return manifest


def _collections(requirements: pathlib.Path) -> set[str]:
    return {entry["name"] for entry in yaml.safe_load(requirements.read_text())["collections"]}


def _installs_collection(containerfile: str) -> None:
    """The galaxy stage installs the tarball copied into the context, after the galaxy requirements."""
    lines = containerfile.splitlines()
    install = [i for i, line in enumerate(lines) if "/build/collection/spotmax-maxgroup-*.tar.gz" in line]
    requirements = [i for i, line in enumerate(lines) if "collection install" in line and "-r requirements.yml" in line]
    assert len(install) == 1, containerfile
    assert requirements, containerfile
    assert "--offline --no-deps" in lines[install[0]]
    assert requirements[0] < install[0]
    # Installed in the galaxy stage, whose /usr/share/ansible the builder (introspection) and final stages copy.
    stages = [i for i, line in enumerate(lines) if line.startswith("FROM ")]
    galaxy_stage = [i for i, line in enumerate(lines) if line.startswith("FROM base AS galaxy")]
    assert galaxy_stage
    assert galaxy_stage[0] < install[0] < min(s for s in stages if s > galaxy_stage[0])


def test_execution_environment_context(tmp_path: pathlib.Path, tarball: pathlib.Path) -> None:
    definition = _layout(tmp_path, tarball, "execution-environment.yml")
    context = tmp_path / "context"

    result = _create(definition, context)

    assert result.returncode == 0, result.stdout + result.stderr
    containerfile = (context / "Containerfile").read_text()
    assert 'ARG EE_BASE_IMAGE="ghcr.io/ansible-community/community-ee-minimal:' in containerfile
    _installs_collection(containerfile)
    build = context / "_build"
    assert (build / "requirements.txt").read_text() == (ROOT / "requirements.txt").read_text()
    assert (build / "bindep.txt").read_text() == (ROOT / "bindep.txt").read_text()
    assert "--user-pip=requirements.txt --user-bindep=bindep.txt" in containerfile
    copied = sorted((build / "collection").iterdir())
    assert [path.name for path in copied] == [TARBALL_NAME]
    info = _manifest(copied[0])["collection_info"]
    assert (info["namespace"], info["name"], info["version"]) == ("spotmax", "maxgroup", VERSION)
    assert _collections(build / "requirements.yml") >= {"amazon.aws", "community.aws", "kubernetes.core"}


def test_decision_environment_context(tmp_path: pathlib.Path, tarball: pathlib.Path) -> None:
    definition = _layout(tmp_path, tarball, "extensions/eda/decision-environment.yml")
    context = tmp_path / "context"

    result = _create(definition, context)

    assert result.returncode == 0, result.stdout + result.stderr
    containerfile = (context / "Containerfile").read_text()
    # The event source needs Python >= 3.11 (datetime.UTC); ansible-rulebook needs a Java runtime.
    assert 'ARG PYCMD="/usr/bin/python3.11"' in containerfile
    assert "ENV JAVA_HOME=" in containerfile
    _installs_collection(containerfile)
    build = context / "_build"
    pip = (build / "requirements.txt").read_text().split()
    assert any(line.startswith("ansible-rulebook") for line in pip)
    assert any(line.startswith("boto3") for line in pip)
    assert any(line.startswith("java-17-openjdk") for line in (build / "bindep.txt").read_text().splitlines())
    assert "ansible.eda" in _collections(build / "requirements.yml")
    assert [path.name for path in (build / "collection").iterdir()] == [TARBALL_NAME]


@pytest.mark.parametrize("definition", ["execution-environment.yml", "extensions/eda/decision-environment.yml"])
def test_create_without_the_tarball_warns(tmp_path: pathlib.Path, definition: str) -> None:
    """Without `make build` the context has no collection, and ansible-builder says which file it missed."""
    src = tmp_path / "src"
    for name in ("requirements.txt", "bindep.txt", "requirements.yml", definition):
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / name, src / name)
    context = tmp_path / "context"

    result = _create(src / definition, context)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "No matches for" in result.stdout + result.stderr
    assert not (context / "_build" / "collection").exists()


def test_installed_collection_declares_its_dependencies(
    tmp_path: pathlib.Path, tarball: pathlib.Path, collection_build: pathlib.Path
) -> None:
    """Any EE that installs the collection gets its Python and system requirements: ansible-builder's
    introspection reads the installed collection's meta/execution-environment.yml."""
    definition = _layout(tmp_path, tarball, "execution-environment.yml")
    context = tmp_path / "context"
    assert _create(definition, context).returncode == 0
    pip, bindep = tmp_path / "pip.txt", tmp_path / "bindep.txt"

    result = subprocess.run(
        [
            str(BIN / "python"),
            str(context / "_build" / "scripts" / "introspect.py"),
            "introspect",
            str(collection_build / "collections"),
            f"--write-pip={pip}",
            f"--write-bindep={bindep}",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    wanted = [line for line in (ROOT / "requirements.txt").read_text().splitlines() if line and line[0] != "#"]
    got = [line.split("  # from collection")[0] for line in pip.read_text().splitlines() if line]
    assert got == wanted
    assert "# from collection spotmax.maxgroup" in bindep.read_text()


def test_requirements_yml_lists_every_collection_used() -> None:
    used: set[str] = set()
    for path in [*ROOT.glob("roles/*/tasks/*.yml"), *ROOT.glob("playbooks/*.yml")]:
        for line in path.read_text().splitlines():
            used |= {f"{ns}.{name}" for ns, name in FQCN.findall(line) if (ns, name) not in OWN}
    # awx.awx is what awx_configure talks to the controller with: it runs from the user's machine, not in the EE.
    used.discard("awx.awx")
    assert used, "no collection found: the scan is broken"
    assert used <= _collections(ROOT / "requirements.yml")
    meta = load_yaml(ROOT / "meta" / "execution-environment.yml")
    assert meta["dependencies"] == {"python": "requirements.txt", "system": "bindep.txt", "galaxy": "requirements.yml"}
