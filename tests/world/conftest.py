"""Fixtures shared by the emulator tests: one AWS emulator per test module, reset before each test."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from spotmax_world.aws import AwsEmulator, control


@pytest.fixture(scope="module")
def aws() -> Iterator[AwsEmulator]:
    with AwsEmulator() as emulator:
        yield emulator


@pytest.fixture
def fresh_aws(aws: AwsEmulator) -> None:
    """Use with ``pytestmark = pytest.mark.usefixtures("fresh_aws")`` in the AWS test modules."""
    assert control(aws.url, "POST", "reset") == (200, {"status": "ok"})


@pytest.fixture
def asg(aws: AwsEmulator) -> Any:
    return aws.client("autoscaling", attempts=1)


@pytest.fixture
def ec2(aws: AwsEmulator) -> Any:
    return aws.client("ec2", attempts=1)


@pytest.fixture
def sqs(aws: AwsEmulator) -> Any:
    return aws.client("sqs", attempts=1)
