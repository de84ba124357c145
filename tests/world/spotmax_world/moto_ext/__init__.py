"""Project-owned extensions to moto 5.2, applied by patching its classes in this process.

``apply()`` is idempotent. What it replaces (check these on a moto upgrade):

- ``moto.autoscaling.models.FakeAutoScalingGroup``: ``set_desired_capacity`` and
  ``replace_autoscaling_group_instances`` (all capacity changes go through ``capacity.reconcile``),
  ``update`` (wrapped: size checks, keeps the mixed instances policy), new ``warm_pool_size``;
  ``FakeWarmPool.status``.
- ``moto.autoscaling.models.AutoScalingBackend``: ``create_auto_scaling_group`` (wrapped),
  ``delete_auto_scaling_group`` (wrapped), ``terminate_instance``, ``notify_terminate_instances``,
  ``create_lifecycle_hook``, ``delete_lifecycle_hook`` (wrapped), ``put/describe/delete_warm_pool``.
- ``moto.autoscaling.responses.AutoScalingResponse``: the methods of
  ``autoscaling_api.ResponseExtensions`` (new actions and ones whose parameters moto drops);
  ``update_auto_scaling_group`` (wrapped by ``capacity_rebalance``: stores ``CapacityRebalance``).
- ``moto.ec2.models.instances.InstanceBackend.run_instances`` (wrapped: Spot market, capacity faults,
  Spot instance requests); ``moto.ec2.utils.filter_dict_attribute_mapping`` (``instance-lifecycle``).
- ``moto.ec2.models.instances.InstanceBackend``: ``get_instance``, ``get_instance_by_id``,
  ``get_multi_instances_by_id``, ``all_instances`` (an id index instead of copying every reservation);
  ``moto.ec2.models.amis.AmiBackend.describe_images`` (wrapped: an exact ``image-id`` is a dict lookup),
  see ``lookups``.
- ``moto.ec2.responses.launch_templates.LaunchTemplates.describe_launch_templates`` (wrapped: all templates
  when MaxResults is not given).
- ``moto.ec2.models.launch_templates.LaunchTemplateBackend.create_launch_template`` (wrapped: the
  template's own tags stay off its version data).
- ``moto.eks.models.EKSBackend.create_cluster`` (wrapped: endpoint and CA of the world's Kubernetes
  emulator, see ``eks``).
- ``moto.sqs.models``: ``Queue.messages`` and the ``approximate_number_of_messages*`` properties,
  ``SQSBackend.is_message_valid_based_on_retention_period``, ``Message.had_receipt_handle`` (the
  same answers without rescanning the queue per message, see ``sqs``).
- ``moto.events.utils.EventTemplateParser.DEFAULT_EVENT_INPUT_TEMPLATE`` (adds ``account``);
  ``jsonpath_ng.ext.parse`` (cached: moto compiles the template's paths for every event).
- module-level ``utcnow`` in ``moto.ec2.models.instances`` and ``moto.autoscaling.models`` (virtual
  clock) and ``moto.settings.ec2_load_default_amis`` (AMI catalogue on demand).

Extension state lives on moto's objects (see ``state``), so moto's reset discards it.
"""

from __future__ import annotations

from datetime import datetime

import moto.autoscaling.models as autoscaling_models
import moto.ec2.models.instances as ec2_instances
from moto import settings

from . import autoscaling_api, capacity_rebalance, ec2_filters, eks, events, launch, launch_templates, lookups, sqs
from ._patch import original, patch
from .runtime import RUNTIME
from .ticker import Ticker, tick

__all__ = ["RUNTIME", "Ticker", "apply", "tick"]


def _virtual_utcnow() -> datetime:
    return RUNTIME.clock.now()


def _load_default_amis() -> bool:
    return RUNTIME.default_amis and bool(original(settings, "ec2_load_default_amis")())


def apply() -> None:
    """Install every extension (safe to call more than once)."""
    # Launch times and moto's own activity stamps follow the virtual clock.
    patch(ec2_instances, "utcnow", _virtual_utcnow)
    patch(autoscaling_models, "utcnow", _virtual_utcnow)
    patch(settings, "ec2_load_default_amis", _load_default_amis)
    launch.install()
    lookups.install()
    events.install()
    ec2_filters.install()
    launch_templates.install()
    autoscaling_api.install()
    capacity_rebalance.install()
    eks.install()
    sqs.install()
