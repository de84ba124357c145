"""playbooks/awx_configure.yml: it parses, and its data (job templates, surveys, schedules, credential types)
matches the collection's playbooks, roles and controller rulebooks."""

from __future__ import annotations

import datetime
import os
import pathlib
import re
import subprocess
from typing import Any

import jinja2
import jinja2.meta
import pytest
from conftest import BIN, ROOT, load_yaml
from dateutil.rrule import rrulestr

PLAYBOOKS = ROOT / "playbooks"
SURVEY_TYPES = {"text", "textarea", "password", "integer", "float", "multiplechoice", "multiselect"}
ROLE_PARTS = ("tasks", "vars", "templates", "handlers")
IMPORTED_PLAYBOOK = re.compile(r"import_playbook:\s*spotmax\.maxgroup\.([a-z0-9_]+)")
INCLUDED_ROLE = re.compile(r"name:\s*spotmax\.maxgroup\.([a-z0-9_]+)")
SCHEDULE_PERIODS = {"spotmax enforce_duration": 300, "spotmax od_fallback": 60, "spotmax revert_to_spot": 300}


def _collection_playbooks() -> set[str]:
    return {path.stem for path in PLAYBOOKS.glob("*.yml")} - {"awx_configure"}


def _code(path: pathlib.Path) -> str:
    """A YAML or template file without its comment lines (a variable named in a comment is not read)."""
    return "\n".join(line for line in path.read_text().splitlines() if not line.lstrip().startswith("#"))


def _read_by(playbook: str) -> str:
    """The playbook, the playbooks it imports and the tasks, vars and templates of the roles they include."""
    texts, seen, todo = [], set(), [playbook]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        text = _code(PLAYBOOKS / f"{name}.yml")
        texts.append(text)
        todo += IMPORTED_PLAYBOOK.findall(text)
        for role in set(INCLUDED_ROLE.findall(text)):
            for part in ROLE_PARTS:
                texts += [_code(path) for path in sorted((ROOT / "roles" / role / part).rglob("*")) if path.is_file()]
    return "\n".join(texts)


def test_syntax_check(tmp_path: pathlib.Path) -> None:
    # The source tree as spotmax.maxgroup (as `make lint` links it); awx.awx comes with the ansible package.
    link = tmp_path / "ansible_collections" / "spotmax" / "maxgroup"
    link.parent.mkdir(parents=True)
    link.symlink_to(ROOT)
    env = {**os.environ, "ANSIBLE_COLLECTIONS_PATH": str(tmp_path), "ANSIBLE_NOCOLOR": "1"}

    result = subprocess.run(
        [str(BIN / "ansible-playbook"), "--syntax-check", str(PLAYBOOKS / "awx_configure.yml")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert result.returncode == 0, result.stdout + result.stderr


def test_every_playbook_has_a_job_template(awx_data: dict[str, Any]) -> None:
    templates = awx_data["awx_configure_job_templates"]
    by_playbook = {template["playbook"]: template for template in templates}

    assert len(by_playbook) == len(templates), "one job template per playbook"
    assert _collection_playbooks() <= set(by_playbook)
    assert set(by_playbook) <= _collection_playbooks()
    for playbook, template in by_playbook.items():
        # The names the controller rulebooks launch.
        assert template["name"] == f"spotmax {playbook}"


def test_controller_rulebooks_launch_configured_templates(awx_data: dict[str, Any]) -> None:
    names = {template["name"] for template in awx_data["awx_configure_job_templates"]}
    launched = set()
    for rulebook in (ROOT / "extensions" / "eda" / "rulebooks").glob("*_controller.yml"):
        for ruleset in load_yaml(rulebook):
            for rule in ruleset["rules"]:
                actions = rule.get("actions") or [rule["action"]]
                for action in actions:
                    if "run_job_template" in action:
                        name = action["run_job_template"]["name"]
                        # "{{ interruption_job_template | default('spotmax handle_interruption') }}"
                        launched |= set(re.findall(r"default\(['\"]([^'\"]+)['\"]", name)) or {name}
    assert launched, "no run_job_template found: the scan is broken"
    assert launched <= names


@pytest.mark.parametrize("playbook", sorted(_collection_playbooks()))
def test_survey_variables_are_read_by_the_playbook(awx_data: dict[str, Any], playbook: str) -> None:
    (template,) = [t for t in awx_data["awx_configure_job_templates"] if t["playbook"] == playbook]
    variables = [question["variable"] for question in template["survey_spec"]["spec"]]
    assert variables, "a survey exposes the playbook's main variables"
    assert len(variables) == len(set(variables))

    code = _read_by(playbook)
    unread = [name for name in variables if not re.search(rf"\b{name}\b", code)]
    assert not unread, f"{playbook} never reads {unread}"


def test_survey_specs_are_valid(awx_data: dict[str, Any]) -> None:
    scheduled = {schedule["job_template"] for schedule in awx_data["awx_configure_schedules"]}
    for template in awx_data["awx_configure_job_templates"]:
        spec = template["survey_spec"]
        assert spec["name"] == template["name"]
        assert isinstance(spec["description"], str)
        for question in spec["spec"]:
            where = f"{template['name']}: {question['variable']}"
            assert question["type"] in SURVEY_TYPES, where
            assert isinstance(question["required"], bool), where
            assert question["question_name"], where
            if question["type"] in {"multiplechoice", "multiselect"}:
                assert all(isinstance(choice, str) for choice in question["choices"]), where
                assert "default" not in question or question["default"] in question["choices"], where
            if question["type"] == "integer" and "default" in question:
                assert question["min"] <= question["default"] <= question["max"], where
            # A schedule launches without answers: a required question would fail every scheduled run.
            if template["name"] in scheduled:
                assert not question["required"] or "default" in question, where


def test_schedules(awx_data: dict[str, Any]) -> None:
    names = {template["name"] for template in awx_data["awx_configure_job_templates"]}
    periods = {}
    for schedule in awx_data["awx_configure_schedules"]:
        assert schedule["job_template"] in names
        rule = rrulestr(schedule["rrule"].replace(" RRULE:", "\nRRULE:"))
        start = datetime.datetime(2026, 6, 1, 12, 0, 30, tzinfo=datetime.UTC)
        first = rule.after(start)
        second = rule.after(first)
        periods[schedule["job_template"]] = (second - first).total_seconds()
    assert periods == SCHEDULE_PERIODS


def test_credential_type_injectors(awx_data: dict[str, Any]) -> None:
    """The injectors use only the type's own inputs, and set the variables the collection reads."""
    environment = jinja2.Environment(autoescape=False)  # noqa: S701 - templates parsed, never rendered here
    injected = set()
    sources = "\n".join(path.read_text() for path in (ROOT / "plugins").rglob("*.py"))
    for credential_type in awx_data["awx_configure_credential_types"]:
        inputs = {field["id"] for field in credential_type["inputs"]["fields"]}
        assert set(credential_type["inputs"]["required"]) <= inputs
        files = {key.split(".", 1)[1] for key in credential_type["injectors"].get("file", {})}
        templates = [*credential_type["injectors"].get("file", {}).values()]
        templates += credential_type["injectors"].get("env", {}).values()
        for template in templates:
            used = jinja2.meta.find_undeclared_variables(environment.parse(template))
            assert used <= inputs | {"tower"}, template
            for filename in re.findall(r"tower\.filename\.([a-z_]+)", template):
                assert filename in files
        injected |= set(credential_type["injectors"].get("env", {}))
    # Read by the collection's modules (the AWS ones through botocore and amazon.aws).
    for name in ("CONSUL_HTTP_TOKEN", "K8S_AUTH_KUBECONFIG"):
        assert name in injected
        assert f'"{name}"' in sources
    assert {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION"} <= injected
