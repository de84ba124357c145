"""Capacity rebalance on UpdateAutoScalingGroup.

moto 5.2 takes ``CapacityRebalance`` only on CreateAutoScalingGroup (kept as
``FakeAutoScalingGroup.capacity_rebalance``, False when not given, and returned by
DescribeAutoScalingGroups from there); its UpdateAutoScalingGroup drops the parameter. The patched
response stores it once moto's update has succeeded; an update that does not name it keeps the flag.

Self-contained (moto and the standard library only, no sibling imports), so the module unit tests
load this file into an in-process moto without the rest of the world, whose imports need the world's
virtualenv. It marks its patch as ``_patch.patch`` does, so installing it twice is harmless.
"""

from __future__ import annotations

from collections.abc import Callable

from moto.autoscaling.responses import AutoScalingResponse
from moto.core.responses import ActionResult

_MARK = "__spotmax_patch__"  # the marker of ``_patch.patch``
_METHOD = "update_auto_scaling_group"


def _storing(update: Callable[[AutoScalingResponse], ActionResult]) -> Callable[[AutoScalingResponse], ActionResult]:
    def update_auto_scaling_group(self: AutoScalingResponse) -> ActionResult:
        result = update(self)
        wanted = self._get_bool_param("CapacityRebalance")
        if wanted is not None:
            # moto's update has just checked that the group exists.
            group = self.autoscaling_backend.autoscaling_groups[self._get_param("AutoScalingGroupName")]
            group.capacity_rebalance = wanted
        return result

    setattr(update_auto_scaling_group, _MARK, True)
    return update_auto_scaling_group


def install() -> None:
    current = getattr(AutoScalingResponse, _METHOD)
    if not getattr(current, _MARK, False):
        setattr(AutoScalingResponse, _METHOD, _storing(current))
