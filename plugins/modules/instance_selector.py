#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright: Contributors to the spotmax.maxgroup project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: instance_selector
version_added: 0.1.0
short_description: Select diversified EC2 instance types for a Spot Auto Scaling group
description:
  - Picks instance types from the region's catalog (C(DescribeInstanceTypes)) the way amazon-ec2-instance-selector
    and C(kops toolbox instance-selector) do, and returns them with their attributes and a ready
    O(amazon.aws.autoscaling_group#module:mixed_instances_policy) value.
  - Every filter that is set must hold; filters left unset do not filter.
  - With O(base_instance_type), the selection keeps types with the base's CPU architecture, GPU count and
    virtualisation type, and vCPUs and memory within 0.9 to 1.2 times the base's. An option given explicitly
    (O(vcpus_min)/O(vcpus_max), O(memory_min)/O(memory_max), O(gpus_min)/O(gpus_max), O(cpu_architecture))
    replaces the corresponding rule of the base type.
  - The catalog is read in pages of 100 and filtered locally in milliseconds; it can be cached in a local file
    with O(cache_ttl), so that later runs make no C(DescribeInstanceTypes) call at all.
  - The module only reads; it never changes anything in AWS and always reports C(changed=false).
author:
  - spotmax.maxgroup maintainers (@spotmax)
options:
  base_instance_type:
    description:
      - An instance type whose size the selected types resemble, for example V(m5.xlarge) (4 vCPUs, 16 GiB).
      - Types keep its CPU architecture, GPU count and virtualisation type (V(hvm) when the base supports it), and
        have between 0.9 and 1.2 times its vCPUs and memory, unless the corresponding options are set.
      - A type the region does not list fails after the catalog is read, naming close matches.
    type: str
  vcpus_min:
    description: Minimum number of vCPUs (default vCPUs of the type).
    type: int
  vcpus_max:
    description: Maximum number of vCPUs.
    type: int
  memory_min:
    description:
      - Minimum memory. A number is MiB (V(16384)); a string may carry a unit (V(16GiB), V(16GB), V(512MiB), V(1TiB)).
      - Units are binary whatever their spelling, as amazon-ec2-instance-selector reads them; V(16GB) is 16 GiB,
        16384 MiB, the memory of an m5.xlarge.
    type: raw
  memory_max:
    description: Maximum memory, in the same form as O(memory_min).
    type: raw
  gpus_min:
    description:
      - Minimum number of GPUs (the sum of the C(GpuInfo) counts; Inferentia and Trainium accelerators are not GPUs).
      - A fractional GPU (the V(g6f) family) counts as one GPU.
    type: int
  gpus_max:
    description: Maximum number of GPUs; V(0) keeps types without GPUs.
    type: int
  vcpus_to_memory_ratio:
    description:
      - Ratio of vCPUs to GiB of memory as V(vCPUs:GiB), for example V(1:4) (4 GiB per vCPU, the m family) or
        V(1:2) (the c family). A type matches when its GiB per vCPU is within 1% of the ratio.
    type: str
  burst_support:
    description: Keep only burstable performance (T) types (V(true)) or only non-burstable types (V(false)).
    type: bool
  cpu_architecture:
    description: CPU architecture the types must support.
    type: str
    choices: [x86_64, arm64, i386, x86_64_mac, arm64_mac]
  current_generation:
    description:
      - Keep only types AWS lists as current generation (V(true)) or only previous-generation types (V(false)).
      - The flag is AWS's own; it is not the digit in the type's name (use O(deny_list) for that).
    type: bool
  hibernation_support:
    description: Keep only types that can hibernate (V(true)) or only types that cannot (V(false)).
    type: bool
  usage_class:
    description: Keep only types that can be launched in this usage class.
    type: str
    choices: [spot, on-demand]
    default: spot
  allow_list:
    description:
      - A Python regular expression searched in the type name (as Go's C(MatchString) does in
        amazon-ec2-instance-selector, not anchored); only matching types are kept.
      - A leading C(^?) (an optional start anchor, which Go accepts and Python does not) is removed before
        compiling; it matches the same names without it. Any other invalid expression fails, naming the field.
    type: str
  deny_list:
    description:
      - A regular expression, in the same form as O(allow_list); matching types are dropped.
      - The kOps tutorial's V(^?[1-3].*\\..*) drops every type whose name has a 1, 2 or 3 before the dot
        (the first three generations, and also types such as V(x2gd.xlarge)).
    type: str
  availability_zones:
    description:
      - Keep only types offered in every one of these Availability Zones (C(DescribeInstanceTypeOfferings)).
      - A zone that offers no type at all (a wrong name) fails the task.
    type: list
    elements: str
  max_results:
    description:
      - Return at most this many types, the first ones in the sort order.
      - An Auto Scaling group accepts at most 40 types in its mixed instances policy; the module warns when it
        returns more.
    type: int
    default: 20
  sort_by:
    description: Attribute the types are sorted by; ties are sorted by name.
    type: str
    choices: [name, vcpus, memory, gpus]
    default: name
  sort_direction:
    description: Sort order.
    type: str
    choices: [ascending, descending]
    default: ascending
  on_demand_base_capacity:
    description: RV(mixed_instances_policy.instances_distribution.on_demand_base_capacity) of the returned policy.
    type: int
    default: 0
  on_demand_percentage_above_base_capacity:
    description:
      - RV(mixed_instances_policy.instances_distribution.on_demand_percentage_above_base_capacity) of the returned
        policy, from V(0) to V(100).
      - Defaults to V(0) (all Spot above the base) with O(usage_class=spot) and V(100) with O(usage_class=on-demand).
    type: int
  spot_allocation_strategy:
    description: RV(mixed_instances_policy.instances_distribution.spot_allocation_strategy) of the returned policy.
    type: str
    choices: [price-capacity-optimized, capacity-optimized, capacity-optimized-prioritized, lowest-price]
    default: price-capacity-optimized
  cache_ttl:
    description:
      - Seconds a cached catalog stays valid; V(0) (the default) disables the cache.
      - The cache file is per region and endpoint, in O(cache_dir), written atomically (a temporary file renamed
        over the old one). A file that is stale, corrupt or for another region is ignored and rewritten.
      - In check mode a valid cache is read but the cache file is never written.
    type: int
    default: 0
  cache_dir:
    description: Directory of the cache files, created (mode 0700) when missing.
    type: path
    default: ~/.cache/spotmax.maxgroup
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: The module only reads AWS; in check mode it does not write the cache file either.
  diff_mode:
    support: none
    details: Nothing changes, so there is no difference to show.
  platform:
    platforms: aws
notes:
  - Required IAM permissions are C(ec2:DescribeInstanceTypes) and, with O(availability_zones),
    C(ec2:DescribeInstanceTypeOfferings).
seealso:
  - module: amazon.aws.autoscaling_group
"""

EXAMPLES = r"""
- name: Types like m5.xlarge (4 vCPUs, 16 GiB) for a Spot group, 4th generation and later, as in the kOps tutorial
  spotmax.maxgroup.instance_selector:
    base_instance_type: m5.xlarge
    burst_support: false
    gpus_max: 0
    deny_list: '^?[1-3].*\..*'
    usage_class: spot
    cache_ttl: 86400
  register: selection

- name: A Spot group with those types
  amazon.aws.autoscaling_group:
    name: spot-group-base-4vcpus-16gb
    launch_template:
      launch_template_name: nodes
    min_size: 1
    max_size: 5
    mixed_instances_policy: "{{ selection.mixed_instances_policy }}"

- name: Graviton types with 2 to 4 vCPUs and 4 GiB per vCPU, offered in two zones, largest first
  spotmax.maxgroup.instance_selector:
    cpu_architecture: arm64
    vcpus_min: 2
    vcpus_max: 4
    vcpus_to_memory_ratio: "1:4"
    availability_zones: [eu-west-1a, eu-west-1b]
    sort_by: vcpus
    sort_direction: descending
    max_results: 10

- name: On-Demand types that can hibernate, for a standby pool, keeping one On-Demand base instance
  spotmax.maxgroup.instance_selector:
    memory_min: 8GiB
    memory_max: 16GiB
    hibernation_support: true
    usage_class: on-demand
    on_demand_base_capacity: 1
"""

RETURN = r"""
instance_types:
  description: The selected types in the sort order, at most O(max_results); empty when none matches (with a warning).
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: The instance type.
      type: str
      sample: m5.xlarge
    vcpus:
      description: Default number of vCPUs.
      type: int
      sample: 4
    memory_mib:
      description: Memory in MiB.
      type: int
      sample: 16384
    gpus:
      description: Number of GPUs.
      type: int
      sample: 0
    architectures:
      description: Supported CPU architectures.
      type: list
      elements: str
      sample: [x86_64]
    virtualization_types:
      description: Supported virtualisation types.
      type: list
      elements: str
      sample: [hvm]
    usage_classes:
      description: Usage classes the type can be launched in.
      type: list
      elements: str
      sample: [on-demand, spot]
    hibernation_support:
      description: Whether instances of the type can hibernate.
      type: bool
      sample: true
    burst_support:
      description: Whether the type is a burstable performance type.
      type: bool
      sample: false
    current_generation:
      description: Whether AWS lists the type as current generation.
      type: bool
      sample: true
    bare_metal:
      description: Whether the type is a bare metal type.
      type: bool
      sample: false
mixed_instances_policy:
  description: The O(amazon.aws.autoscaling_group#module:mixed_instances_policy) value for the selected types.
  returned: always
  type: dict
  contains:
    instance_types:
      description: The names of the selected types, in the sort order (the priority order of prioritized strategies).
      type: list
      elements: str
      sample: [m4.xlarge, m5.xlarge, m5a.xlarge]
    instances_distribution:
      description: The On-Demand/Spot distribution.
      type: dict
      contains:
        on_demand_base_capacity:
          description: The O(on_demand_base_capacity).
          type: int
          sample: 0
        on_demand_percentage_above_base_capacity:
          description: The O(on_demand_percentage_above_base_capacity), or its default for the usage class.
          type: int
          sample: 0
        spot_allocation_strategy:
          description: The O(spot_allocation_strategy).
          type: str
          sample: price-capacity-optimized
criteria:
  description: The filters applied, after the base type's rules; a null filter does not filter.
  returned: always
  type: dict
  contains:
    vcpus:
      description: The vCPU range, with C(min) and C(max).
      type: dict
      sample: {"min": 3.6, "max": 4.8}
    memory_mib:
      description: The memory range in MiB, with C(min) and C(max).
      type: dict
      sample: {"min": 14745.6, "max": 19660.8}
    gpus:
      description: The GPU range, with C(min) and C(max).
      type: dict
      sample: {"min": 0, "max": 0}
    vcpus_to_memory_ratio:
      description: GiB of memory per vCPU.
      type: float
      sample: 4
    burst_support:
      description: The O(burst_support) filter.
      type: bool
      sample: false
    cpu_architectures:
      description: Architectures of which a type must support one (from O(cpu_architecture) or the base type).
      type: list
      elements: str
      sample: [x86_64]
    virtualization_type:
      description: The virtualisation type a type must support (from the base type).
      type: str
      sample: hvm
    current_generation:
      description: The O(current_generation) filter.
      type: bool
      sample: null
    hibernation_support:
      description: The O(hibernation_support) filter.
      type: bool
      sample: null
    usage_class:
      description: The O(usage_class) filter.
      type: str
      sample: spot
    allow_list:
      description: The allow list as compiled (without a leading C(^?)).
      type: str
      sample: null
    deny_list:
      description: The deny list as compiled (without a leading C(^?)).
      type: str
      sample: "[1-3].*\\..*"
catalog:
  description: Where the catalog came from.
  returned: always
  type: dict
  contains:
    source:
      description: V(api) when read with C(DescribeInstanceTypes) in this run, V(cache) when read from the cache file.
      type: str
      sample: cache
    size:
      description: Number of types in the catalog.
      type: int
      sample: 1395
    age_seconds:
      description: Age of the catalog (0 when read in this run).
      type: int
      sample: 3600
    cache_file:
      description: The cache file, null when O(cache_ttl=0).
      type: str
      sample: /home/ansible/.cache/spotmax.maxgroup/instance-types-us-east-1-0123456789abcdef.json
    cache_written:
      description: Whether this run wrote the cache file.
      type: bool
      sample: false
"""

try:
    import botocore
except ImportError:
    pass  # handled by AnsibleAWSModule

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry

from ansible_collections.spotmax.maxgroup.plugins.module_utils import instance_selector as isel


def read_catalog(module, ec2, region):
    """The catalog, from a valid cache file or the API; writes the cache (not in check mode)."""
    params = module.params
    endpoint = params.get("endpoint_url")
    info = dict(source="api", size=0, age_seconds=0, cache_file=None, cache_written=False)
    path = None
    if params["cache_ttl"] > 0:
        path = isel.cache_path(params["cache_dir"], region, endpoint)
        info["cache_file"] = path
        cached = isel.load_cache(path, region, endpoint, params["cache_ttl"])
        if cached is not None:
            types, age = cached
            info.update(source="cache", size=len(types), age_seconds=int(age))
            return types, info
    types = isel.describe_instance_types(ec2)
    info["size"] = len(types)
    if path is not None and not module.check_mode and types:
        try:
            isel.save_cache(path, region, endpoint, types)
            info["cache_written"] = True
        except OSError as exc:
            module.warn(f"cache_dir: could not write the cache file {path}: {exc}")
    return types, info


def main():
    argument_spec = dict(
        base_instance_type=dict(type="str"),
        vcpus_min=dict(type="int"),
        vcpus_max=dict(type="int"),
        memory_min=dict(type="raw"),
        memory_max=dict(type="raw"),
        gpus_min=dict(type="int"),
        gpus_max=dict(type="int"),
        vcpus_to_memory_ratio=dict(type="str"),
        burst_support=dict(type="bool"),
        cpu_architecture=dict(type="str", choices=list(isel.ARCHITECTURES)),
        current_generation=dict(type="bool"),
        hibernation_support=dict(type="bool"),
        usage_class=dict(type="str", choices=list(isel.USAGE_CLASSES), default="spot"),
        allow_list=dict(type="str"),
        deny_list=dict(type="str"),
        availability_zones=dict(type="list", elements="str"),
        max_results=dict(type="int", default=20),
        sort_by=dict(type="str", choices=list(isel.SORT_KEYS), default="name"),
        sort_direction=dict(type="str", choices=list(isel.SORT_DIRECTIONS), default="ascending"),
        on_demand_base_capacity=dict(type="int", default=0),
        on_demand_percentage_above_base_capacity=dict(type="int"),
        spot_allocation_strategy=dict(
            type="str", choices=list(isel.SPOT_ALLOCATION_STRATEGIES), default="price-capacity-optimized"
        ),
        cache_ttl=dict(type="int", default=0),
        cache_dir=dict(type="path", default="~/.cache/spotmax.maxgroup"),
    )
    module = AnsibleAWSModule(argument_spec=argument_spec, supports_check_mode=True)
    params = module.params
    try:
        request = isel.validate(params)
        distribution = isel.distribution(
            params["usage_class"],
            params["on_demand_base_capacity"],
            params["on_demand_percentage_above_base_capacity"],
            params["spot_allocation_strategy"],
        )
    except isel.SelectorError as exc:
        module.fail_json(msg=str(exc))

    ec2 = module.client("ec2", retry_decorator=AWSRetry.jittered_backoff())
    region = module.region
    try:
        catalog, info = read_catalog(module, ec2, region)
        wanted = isel.criteria(request, {t.name: t for t in catalog}, region)
        offered = None
        if request.availability_zones:
            offerings = isel.describe_offerings(ec2, request.availability_zones)
            offered, empty = isel.offered_everywhere(offerings, request.availability_zones)
            if empty:
                module.fail_json(
                    msg=f"availability_zones: {', '.join(repr(zone) for zone in empty)} "
                    f"{'offers' if len(empty) == 1 else 'offer'} no instance type in region {region}; "
                    f"use Availability Zone names of that region, for example '{region}a'"
                )
    except isel.SelectorError as exc:
        module.fail_json(msg=str(exc))
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
        module.fail_json_aws(exc, msg="Failed to read the EC2 instance type catalog")

    selected = isel.select(catalog, wanted, offered, request.sort_by, request.sort_direction, request.max_results)
    if not selected:
        module.warn("no instance type matches the options; the mixed instances policy lists no type")
    elif len(selected) > isel.MAX_OVERRIDES:
        module.warn(
            f"{len(selected)} instance types selected; an Auto Scaling group accepts at most {isel.MAX_OVERRIDES} "
            "in its mixed instances policy (lower max_results)"
        )
    module.exit_json(
        changed=False,
        instance_types=[t.to_dict() for t in selected],
        mixed_instances_policy=isel.mixed_instances_policy(selected, distribution),
        criteria=wanted.describe(),
        catalog=info,
    )


if __name__ == "__main__":
    main()
