"""CreateLaunchTemplate: tags of the template itself stay off the template's version data.

moto copies the request's top-level TagSpecifications (ResourceType ``launch-template``) into
LaunchTemplateData, so every describe shows data the user never set and amazon.aws's
ec2_launch_template makes a new version on each run. AWS keeps them on the template only.
"""

from __future__ import annotations

from typing import Any

from moto.ec2.models.launch_templates import LaunchTemplate, LaunchTemplateBackend

from ._patch import original, patch


def _create_launch_template(
    self: LaunchTemplateBackend, name: str, description: str, template_data: dict[str, Any], tag_spec: dict[str, Any]
) -> LaunchTemplate:
    specs = [s for s in template_data.get("TagSpecifications") or [] if s.get("ResourceType") != "launch-template"]
    data = {key: value for key, value in template_data.items() if key != "TagSpecifications"}
    if specs:
        data["TagSpecifications"] = specs
    created: LaunchTemplate = original(LaunchTemplateBackend, "create_launch_template")(
        self, name, description, data, tag_spec
    )
    return created


def install() -> None:
    patch(LaunchTemplateBackend, "create_launch_template", _create_launch_template)
