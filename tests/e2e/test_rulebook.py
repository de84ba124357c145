"""ansible-rulebook loads the event source from the installed collection and sees a Spot interruption."""

from __future__ import annotations

import json
import os
import subprocess

from conftest import BIN

RULEBOOK = """---
- name: Interruptions from the test world
  hosts: all
  sources:
    - spotmax.maxgroup.sqs_interruptions:
        queue_url: {queue_url}
        region: {region}
        endpoint_url: {endpoint_url}
        batch_window: 1
        wait_time: 1
  rules:
    - name: Print the batch, then stop
      condition: event.spotmax.events is defined
      actions:
        - print_event:
            pretty: true
        - shutdown:
            message: got a batch of interruptions
"""


def test_rulebook_receives_spot_interruptions_through_the_installed_source(world, aws, collections_path, tmp_path):
    env = world.environment()
    sqs, ec2, events = aws("sqs"), aws("ec2"), aws("events")
    url = sqs.create_queue(QueueName="interruptions")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(
        Name="spot",
        EventPattern=json.dumps({"source": ["aws.ec2"], "detail-type": ["EC2 Spot Instance Interruption Warning"]}),
    )
    events.put_targets(Rule="spot", Targets=[{"Id": "q", "Arn": arn}])
    reservation = ec2.run_instances(
        ImageId="ami-12c6146b",
        InstanceType="m5.large",
        MinCount=2,
        MaxCount=2,
        InstanceMarketOptions={"MarketType": "spot"},
    )
    ids = sorted(i["InstanceId"] for i in reservation["Instances"])
    assert sorted(world.aws.interrupt(ids)["interrupted"]) == ids

    rulebook = tmp_path / "rulebook.yml"
    rulebook.write_text(RULEBOOK.format(queue_url=url, region=env["AWS_REGION"], endpoint_url=env["AWS_ENDPOINT_URL"]))
    inventory = tmp_path / "inventory.yml"
    inventory.write_text("all:\n  hosts:\n    localhost:\n      ansible_connection: local\n")
    result = subprocess.run(
        [str(BIN / "ansible-rulebook"), "--rulebook", str(rulebook), "--inventory", str(inventory)],
        env={
            **os.environ,
            **env,
            "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            "ANSIBLE_COLLECTIONS_PATH": str(collections_path),
            "AWS_CONFIG_FILE": "/dev/null",
            "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
        },
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "got a batch of interruptions" in output
    for instance_id in ids:
        assert f"'instance_id': '{instance_id}'" in output
    assert output.count("'kind': 'spot_interruption'") == 2
    # the source deleted nothing: both notices wait, hidden, for the playbook's acknowledgement
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessagesNotVisible"])
    assert attributes["Attributes"]["ApproximateNumberOfMessagesNotVisible"] == "2"
