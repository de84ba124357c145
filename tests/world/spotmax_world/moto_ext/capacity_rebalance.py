"""Capacity rebalance on UpdateAutoScalingGroup.

moto 5.2 takes ``CapacityRebalance`` only on CreateAutoScalingGroup (kept as
``FakeAutoScalingGroup.capacity_rebalance``, False when not given, and returned by
DescribeAutoScalingGroups from there); its UpdateAutoScalingGroup drops the parameter. The patched
response stores it after moto's update succeeded; an update that does not name it keeps the flag.

Self-contained (only moto's ``AutoScalingResponse.update_auto_scaling_group`` is replaced), so the
module unit tests install it into an in-process moto without the rest of the world's extensions.
"""

from __future__ import annotations

from moto.autoscaling.responses import AutoScalingResponse
from moto.core.responses import ActionResult

from ._patch import original, patch


def _update_auto_scaling_group(self: AutoScalingResponse) -> ActionResult:
    result: ActionResult = original(AutoScalingResponse, "update_auto_scaling_group")(self)
    wanted = self._get_bool_param("CapacityRebalance")
    if wanted is not None:
        # moto's update has just checked that the group exists.
        group = self.autoscaling_backend.autoscaling_groups[self._get_param("AutoScalingGroupName")]
        group.capacity_rebalance = wanted
    return result


def install() -> None:
    patch(AutoScalingResponse, "update_auto_scaling_group", _update_auto_scaling_group)
