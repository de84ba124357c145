"""The built tarball: installs, documents every plugin, carries no test-world code."""

from __future__ import annotations

import json
import os
import pathlib
import socket
import subprocess
import sys
import tarfile

from conftest import BIN, ROOT


def test_tarball_has_no_test_world(tarball):
    with tarfile.open(tarball) as archive:
        names = archive.getnames()
    assert "plugins/modules/asg_warm_pool.py" in names
    assert not [
        n for n in names if n.startswith(("tests/world", "tests/e2e", "demo", "extensions/molecule", ".venv", "build/"))
    ]


def test_installed_collection_documents_every_plugin(collections_path):
    env = {**os.environ, "ANSIBLE_COLLECTIONS_PATH": str(collections_path)}
    listed = subprocess.run(
        [str(BIN / "ansible-doc"), "-l", "spotmax.maxgroup", "-j"], env=env, check=True, capture_output=True, text=True
    )
    modules = {name.rsplit(".", 1)[-1] for name in json.loads(listed.stdout)}
    shipped = {p.stem for p in (ROOT / "plugins" / "modules").glob("*.py") if p.stem != "__init__"}
    assert shipped
    assert modules == shipped


def test_world_exec_leaves_nothing_listening(tmp_path):
    state = tmp_path / "state.json"
    script = f"import os, shutil; shutil.copy(os.environ['SPOTMAX_WORLD'], {str(state)!r})"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "tests" / "world")}
    subprocess.run(
        [sys.executable, "-m", "spotmax_world", "exec", "--", sys.executable, "-c", script],
        env=env,
        check=True,
        timeout=120,
    )
    described = json.loads(state.read_text())
    for key in ("aws_url", "kubernetes_url", "consul_url"):
        port = int(described[key].rsplit(":", 1)[1])
        with socket.socket() as probe:
            probe.settimeout(1)
            assert probe.connect_ex(("127.0.0.1", port)) != 0, f"{key} still listening after exec"
    assert pathlib.Path(described["kubeconfig"]).exists() is False
