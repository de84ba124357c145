"""awx_configure against an emulated controller API on 127.0.0.1 (tests/awx/controller.py): the objects it
creates, and a second run that changes nothing."""

from __future__ import annotations

import json
import os
import pathlib
import re
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import BIN, ROOT
from controller import TOKEN, Controller

PLAYBOOK = ROOT / "playbooks" / "awx_configure.yml"
SECRETS = {"aws": "aws-secret-key-value", "kubeconfig": "kubeconfig-secret-content", "consul": "consul-secret-token"}


@pytest.fixture(name="controller")
def controller_fixture() -> Iterator[Controller]:
    with Controller() as controller:
        yield controller


def _run(controller: Controller, tmp_path: pathlib.Path, **overrides: Any) -> subprocess.CompletedProcess[str]:
    link = tmp_path / "collections" / "ansible_collections" / "spotmax" / "maxgroup"
    if not link.exists():
        link.parent.mkdir(parents=True)
        link.symlink_to(ROOT)
    extra = {
        "awx_configure_controller_host": controller.url,
        "awx_configure_controller_oauthtoken": TOKEN,
        "awx_configure_scm_url": "https://git.example.invalid/spotmax/maxgroup.git",
        "awx_configure_ee_image": "registry.example.invalid/spotmax/spotmax-maxgroup-ee:0.1.0",
        "awx_configure_aws_access_key": "AKIAEXAMPLE",
        "awx_configure_aws_secret_key": SECRETS["aws"],
        "awx_configure_aws_region": "eu-west-1",
        "awx_configure_kubeconfig": SECRETS["kubeconfig"],
        "awx_configure_consul_token": SECRETS["consul"],
        **overrides,
    }
    extra_file = tmp_path / "extra.json"
    extra_file.write_text(json.dumps(extra))
    env = {
        **os.environ,
        "ANSIBLE_COLLECTIONS_PATH": str(tmp_path / "collections"),
        "ANSIBLE_NOCOLOR": "1",
        "NO_PROXY": "127.0.0.1",
        "no_proxy": "127.0.0.1",
    }
    for name in [name for name in env if name.startswith(("CONTROLLER_", "TOWER_"))]:
        del env[name]
    return subprocess.run(
        [str(BIN / "ansible-playbook"), "-v", "-i", "localhost,", str(PLAYBOOK), "-e", f"@{extra_file}"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _recap(result: subprocess.CompletedProcess[str]) -> dict[str, int]:
    match = re.search(r"localhost\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", result.stdout)
    assert match, result.stdout + result.stderr
    return dict(zip(("ok", "changed", "unreachable", "failed"), map(int, match.groups()), strict=True))


# Two full runs of ~25 module calls each (a few seconds per call on a loaded machine).
@pytest.mark.timeout(900)
def test_objects_created_and_second_run_changes_nothing(
    controller: Controller, tmp_path: pathlib.Path, awx_data: dict[str, Any]
) -> None:
    first = _run(controller, tmp_path)

    assert first.returncode == 0, first.stdout + first.stderr
    assert _recap(first)["changed"] > 0
    for secret in SECRETS.values():
        assert secret not in first.stdout + first.stderr
    org = controller.one("organizations", name="Default")["id"]
    ee = controller.one("execution_environments", name="spotmax.maxgroup")
    assert ee["image"] == "registry.example.invalid/spotmax/spotmax-maxgroup-ee:0.1.0"
    project = controller.one("projects", name="spotmax.maxgroup", organization=org)
    assert (project["scm_type"], project["scm_url"]) == ("git", "https://git.example.invalid/spotmax/maxgroup.git")
    assert project["default_environment"] == ee["id"]

    types = {item["name"]: item for item in controller.objects["credential_types"].values()}
    assert set(types) == {"spotmax AWS", "spotmax kubeconfig", "spotmax Consul"}
    for wanted in awx_data["awx_configure_credential_types"]:
        # The injectors reach the controller as templates, not rendered by Ansible.
        assert types[wanted["name"]]["injectors"] == wanted["injectors"]
        assert types[wanted["name"]]["inputs"] == wanted["inputs"]
    credentials = {item["name"]: item for item in controller.objects["credentials"].values()}
    assert set(credentials) == {"spotmax AWS", "spotmax kubeconfig", "spotmax Consul"}
    assert credentials["spotmax AWS"]["inputs"] == {
        "access_key": "AKIAEXAMPLE",
        "secret_key": SECRETS["aws"],
        "region": "eu-west-1",
    }
    assert credentials["spotmax kubeconfig"]["inputs"] == {"kubeconfig": SECRETS["kubeconfig"]}
    assert credentials["spotmax Consul"]["inputs"] == {"token": SECRETS["consul"]}
    for name, credential in credentials.items():
        assert credential["credential_type"] == types[name]["id"]

    inventory = controller.one("inventories", name="spotmax", organization=org)
    host = controller.one("hosts", name="localhost", inventory=inventory["id"])
    assert json.loads(host["variables"]) == {
        "ansible_connection": "local",
        "ansible_python_interpreter": "{{ ansible_playbook_python }}",
    }

    templates = {item["name"]: item for item in controller.objects["job_templates"].values()}
    assert set(templates) == {template["name"] for template in awx_data["awx_configure_job_templates"]}
    credential_ids = {credential["id"] for credential in credentials.values()}
    for wanted in awx_data["awx_configure_job_templates"]:
        template = templates[wanted["name"]]
        assert template["playbook"] == f"playbooks/{wanted['playbook']}.yml"
        assert (template["project"], template["inventory"]) == (project["id"], inventory["id"])
        assert template["execution_environment"] == ee["id"]
        assert template["ask_variables_on_launch"] is True
        assert template["survey_enabled"] is True
        assert controller.survey_specs[template["id"]] == wanted["survey_spec"]
        assert controller.associations[("job_templates", template["id"], "credentials")] == credential_ids

    schedules = {item["name"]: item for item in controller.objects["schedules"].values()}
    template_names = {item["id"]: name for name, item in templates.items()}
    assert {
        (name, template_names[item["unified_job_template"]], item["rrule"]) for name, item in schedules.items()
    } == {
        (schedule["name"], schedule["job_template"], schedule["rrule"])
        for schedule in awx_data["awx_configure_schedules"]
    }
    assert all(item["enabled"] is True for item in schedules.values())

    controller.writes.clear()
    second = _run(controller, tmp_path)

    assert second.returncode == 0, second.stdout + second.stderr
    assert _recap(second)["changed"] == 0, second.stdout
    assert controller.writes == []


def test_schedules_disabled_and_no_credentials(
    controller: Controller, tmp_path: pathlib.Path, awx_data: dict[str, Any]
) -> None:
    # One scheduled template is enough here (each loop item is a module call).
    schedule = awx_data["awx_configure_schedules"][0]
    (template,) = [t for t in awx_data["awx_configure_job_templates"] if t["name"] == schedule["job_template"]]
    result = _run(
        controller,
        tmp_path,
        awx_configure_job_templates=[template],
        awx_configure_schedules=[schedule],
        awx_configure_schedules_enabled=False,
        awx_configure_aws_access_key="",
        awx_configure_kubeconfig="",
        awx_configure_consul_token="",
        awx_configure_ee_image="",
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert controller.objects["credentials"] == {}
    assert controller.objects["execution_environments"] == {}
    assert len(controller.objects["credential_types"]) == 3
    (created,) = controller.objects["schedules"].values()
    assert (created["name"], created["enabled"]) == (schedule["name"], False)
    assert len(controller.objects["job_templates"]) == 1
    for template in controller.objects["job_templates"].values():
        assert template.get("execution_environment") is None
        assert not controller.associations.get(("job_templates", template["id"], "credentials"))


def test_wrong_token_fails(controller: Controller, tmp_path: pathlib.Path) -> None:
    result = _run(controller, tmp_path, awx_configure_controller_oauthtoken="not-the-token")

    assert result.returncode != 0
    assert "HTTP 401" in result.stdout
    assert controller.objects["projects"] == {}


def test_scm_url_is_required(controller: Controller, tmp_path: pathlib.Path) -> None:
    result = _run(controller, tmp_path, awx_configure_scm_url="")

    assert result.returncode != 0
    assert "awx_configure_scm_url is required" in result.stdout
    assert controller.writes == []
