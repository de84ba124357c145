"""Launch templates as AWS keeps them.

- CreateLaunchTemplate: tags of the template itself stay off the template's version data. moto copies
  the request's top-level TagSpecifications (ResourceType ``launch-template``) into LaunchTemplateData,
  so every describe shows data the user never set and amazon.aws's ec2_launch_template makes a new
  version on each run. AWS keeps them on the template only.
- DescribeLaunchTemplates without MaxResults: moto cuts the answer at 15 templates with no NextToken,
  so a paginated read of 50 templates silently saw 15. The whole answer is returned instead.
"""

from __future__ import annotations

from typing import Any

from moto.core.responses import ActionResult
from moto.ec2.models.launch_templates import LaunchTemplate, LaunchTemplateBackend
from moto.ec2.responses.launch_templates import LaunchTemplates

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


def _describe_launch_templates(self: LaunchTemplates) -> ActionResult:
    if self._get_param("MaxResults") is None:
        read_int = self._get_int_param

        def unbounded(name: str, default: Any = None) -> Any:
            return 1_000_000 if name == "MaxResults" else read_int(name, default)

        self._get_int_param = unbounded  # type: ignore[method-assign,assignment]  # this request only
    result: ActionResult = original(LaunchTemplates, "describe_launch_templates")(self)
    return result


def install() -> None:
    patch(LaunchTemplateBackend, "create_launch_template", _create_launch_template)
    patch(LaunchTemplates, "describe_launch_templates", _describe_launch_templates)
