#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright: Contributors to the spotmax.maxgroup project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: cloudwatch_dashboard
version_added: 0.1.0
short_description: Manage a CloudWatch dashboard
description:
  - Creates, updates or deletes a CloudWatch dashboard.
  - The dashboard's current body is read with C(GetDashboard) and compared, parsed, with O(body); C(PutDashboard) is
    called only when they differ (key order and formatting do not count).
  - O(body) is checked against the dashboard body structure and CloudWatch's dashboard quotas (500 widgets, 500 metrics
    per widget, 2500 metrics per dashboard) before any API call.
  - C(DashboardValidationMessages) of a successful C(PutDashboard) are returned as warnings; a body CloudWatch refuses
    fails the module with CloudWatch's messages in RV(dashboard_validation_messages).
  - The body of a fleet's dashboard comes from the P(spotmax.maxgroup.fleet_dashboard#filter) filter; the
    P(spotmax.maxgroup.dashboard#role) role wires both together.
author:
  - spotmax.maxgroup maintainers (@spotmax)
options:
  name:
    description: Name of the dashboard, 1 to 255 characters of letters, digits, C(-) and C(_).
    type: str
    required: true
  state:
    description: Whether the dashboard exists.
    type: str
    choices: [present, absent]
    default: present
  body:
    description:
      - The dashboard body (see the CloudWatch dashboard body structure), as a dict with a C(widgets) list.
      - Required with O(state=present).
    type: dict
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
    details: The before and after bodies.
  platform:
    platforms: aws
"""

EXAMPLES = r"""
- name: A dashboard with one graph
  spotmax.maxgroup.cloudwatch_dashboard:
    name: web
    body:
      widgets:
        - type: metric
          x: 0
          y: 0
          width: 12
          height: 6
          properties:
            title: web in service
            region: us-east-1
            metrics:
              - [AWS/AutoScaling, GroupInServiceInstances, AutoScalingGroupName, web]

- name: The fleet dashboard of two groups
  spotmax.maxgroup.cloudwatch_dashboard:
    name: fleet
    body: "{{ ['web', 'api'] | spotmax.maxgroup.fleet_dashboard(standby={'web': 'web-standby'}, region='us-east-1') }}"

- name: Remove the dashboard
  spotmax.maxgroup.cloudwatch_dashboard:
    name: fleet
    state: absent
"""

RETURN = r"""
dashboard:
  description: The dashboard after the run (in check mode, as it would be); empty when there is none.
  returned: always
  type: dict
  contains:
    name:
      description: Name of the dashboard.
      type: str
      sample: fleet
    arn:
      description: ARN of the dashboard; null in check mode for a dashboard that does not exist yet.
      type: str
      sample: arn:aws:cloudwatch::123456789012:dashboard/fleet
    body:
      description: The dashboard body.
      type: dict
      sample: {"widgets": [{"type": "text", "x": 0, "y": 0, "width": 24, "height": 1, "properties": {"markdown": "#"}}]}
dashboard_validation_messages:
  description: CloudWatch's validation messages for the body, each with its C(data_path) and C(message).
  returned: when CloudWatch returned any
  type: list
  elements: dict
  sample: [{"data_path": "/widgets/0/properties/metrics", "message": "Should NOT have more than 500 items"}]
"""

try:
    import botocore
except ImportError:
    pass  # handled by AnsibleAWSModule

import json

from ansible_collections.amazon.aws.plugins.module_utils.botocore import is_boto3_error_code
from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry

from ansible_collections.spotmax.maxgroup.plugins.module_utils import dashboard as db


def read(client, name):
    """(arn, body) of the dashboard; (None, None) when there is none."""
    try:
        response = client.get_dashboard(aws_retry=True, DashboardName=name)
    except is_boto3_error_code(["ResourceNotFound", "ResourceNotFoundException"]):
        return None, None
    return response.get("DashboardArn"), db.parse_body(response.get("DashboardBody"))


def encode(body):
    return json.dumps(body, sort_keys=True)


def validation_messages(entries):
    return [{"data_path": entry.get("DataPath"), "message": entry.get("Message")} for entry in entries or []]


def main():
    argument_spec = dict(
        name=dict(type="str", required=True),
        state=dict(type="str", choices=["present", "absent"], default="present"),
        body=dict(type="dict"),
    )
    module = AnsibleAWSModule(
        argument_spec=argument_spec, required_if=[("state", "present", ["body"])], supports_check_mode=True
    )
    params = module.params
    name = params["name"]
    error = db.name_error(name)
    if error:
        module.fail_json(msg=error)
    if params["state"] == "present":
        errors = db.body_errors(params["body"])
        if errors:
            module.fail_json(msg="; ".join(errors))

    client = module.client("cloudwatch", retry_decorator=AWSRetry.jittered_backoff())
    result = {}
    try:
        arn, before = read(client, name)
        if params["state"] == "absent":
            changed, after = before is not None, None
            if changed and not module.check_mode:
                client.delete_dashboards(aws_retry=True, DashboardNames=[name])
        else:
            wanted = db.normalise(params["body"])
            changed, after = not db.same_body(before, wanted), wanted
            if changed and not module.check_mode:
                response = client.put_dashboard(aws_retry=True, DashboardName=name, DashboardBody=encode(wanted))
                messages = validation_messages(response.get("DashboardValidationMessages"))
                if messages:
                    result["dashboard_validation_messages"] = messages
                    for entry in messages:
                        module.warn(f"body{entry['data_path'] or ''}: {entry['message']}")
                arn, after = read(client, name)
    except db.DashboardError as exc:
        module.fail_json(msg=str(exc))
    except is_boto3_error_code(["InvalidParameterInput", "DashboardInvalidInputError"]) as exc:
        response = getattr(exc, "response", {}) or {}
        messages = validation_messages(
            response.get("DashboardValidationMessages") or response.get("Error", {}).get("DashboardValidationMessages")
        )
        module.fail_json_aws(
            exc, msg=f"body: CloudWatch refused the body of dashboard {name!r}", dashboard_validation_messages=messages
        )
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
        module.fail_json_aws(exc, msg=f"Failed to manage CloudWatch dashboard {name!r}")

    result.update(changed=changed, dashboard=db.describe(name, arn, after))
    if module._diff:
        result["diff"] = dict(before=before or {}, after=after or {})
    module.exit_json(**result)


if __name__ == "__main__":
    main()
