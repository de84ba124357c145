"""Each AWS emulator starts from an empty account, although moto keeps its resources per process."""

from __future__ import annotations

from spotmax_world.aws import AwsEmulator


def test_a_new_emulator_does_not_inherit_the_last_ones_resources() -> None:
    with AwsEmulator() as first:
        first.client("sqs", attempts=1).create_queue(QueueName="left-behind")
        assert first.client("sqs", attempts=1).list_queues().get("QueueUrls")
    with AwsEmulator() as second:
        assert second.client("sqs", attempts=1).list_queues().get("QueueUrls", []) == []
