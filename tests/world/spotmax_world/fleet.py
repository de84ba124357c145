"""A managed Spot fleet in a running :class:`~spotmax_world.world.World`, for the benchmark, e2e tests and the demo.

:func:`seed_fleet` builds, in one go:

* AWS: a launch template and an Auto Scaling group (mixed instances policy, all Spot) of ``size``
  instances that carry ``spotmax:group`` (propagated from the group's tags) and the group's
  ``spotmax:`` settings (kubeconfig = the world's, ``spotmax:consul_port``, delays); optionally an
  On-Demand standby group tagged ``spotmax:standby_for``; the interruption queue with a dead-letter
  queue (redrive policy) and one EventBridge rule per event kind the pipeline handles, each
  targeting the queue.
* Optionally (``persistence_dev``) the group's ``spotmax:persistence_dev`` tag and, per instance, a data
  volume attached at that device with ``DeleteOnTermination`` true (the launch template does not map
  the device, so replacements launch without one and can receive the kept volume).
* Kubernetes: per instance a node (named after its private DNS name, ``spec.providerID`` =
  ``aws:///<zone>/<instance-id>``) running ``pods_per_node`` pods owned by ReplicaSets ``app-0``,
  ``app-1``, ...; every third pod (by fleet-wide index) carries ``spotmax-world/guarded: "true"``
  and is under its ReplicaSet's PodDisruptionBudget (``maxUnavailable: 1``).
* Consul: per instance an agent for its node (address = the instance's private IP) holding
  ``services_per_node`` services.

Kubernetes and Consul are seeded by direct calls into the in-process emulators (not counted as API
requests); AWS through boto3. The world's private IPs are fake: reach an agent only through
:attr:`Fleet.consul_agent_addresses` (node name -> ``127.0.0.1:port``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from moto.autoscaling.models import autoscaling_backends

from spotmax_world.moto_ext.runtime import RUNTIME
from spotmax_world.world import World

AMI = "ami-12c6146b"
INSTANCE_TYPES = ("m5.large", "c5.large", "r5.large")
ZONES = ("us-east-1a", "us-east-1b", "us-east-1c")
NAMESPACE = "default"
GUARDED_LABEL = "spotmax-world/guarded"
SERVICE_NAMES = ("web", "metrics", "cache", "queue", "search")
DEFAULT_CONSUL_PORT = 8500
DATA_VOLUME_GIB = 10
MAX_RECEIVE_COUNT = 5

# Event kind -> EventBridge pattern (the five kinds of docs/design/interruptions.md).
EVENT_PATTERNS: dict[str, dict[str, Any]] = {
    "spot_interruption": {"source": ["aws.ec2"], "detail-type": ["EC2 Spot Instance Interruption Warning"]},
    "rebalance": {"source": ["aws.ec2"], "detail-type": ["EC2 Instance Rebalance Recommendation"]},
    "lifecycle_terminate": {"source": ["aws.autoscaling"], "detail-type": ["EC2 Instance-terminate Lifecycle Action"]},
    "state_change": {"source": ["aws.ec2"], "detail-type": ["EC2 Instance State-change Notification"]},
    "scheduled_change": {"source": ["aws.health"], "detail-type": ["AWS Health Event"]},
}


@dataclass(frozen=True)
class FleetInstance:
    instance_id: str
    zone: str
    instance_type: str
    private_ip: str
    node_name: str  # Kubernetes node and Consul node
    consul_agent: str  # 127.0.0.1:port of the node's emulated agent
    pods: tuple[str, ...]
    services: tuple[str, ...]

    @property
    def provider_id(self) -> str:
        return f"aws:///{self.zone}/{self.instance_id}"


@dataclass(frozen=True)
class Fleet:
    group: str
    standby_group: str | None
    launch_template: str
    queue_url: str
    queue_arn: str
    dlq_url: str
    rules: tuple[str, ...]
    group_tags: dict[str, str]
    instances: tuple[FleetInstance, ...]
    pdbs: tuple[str, ...]
    consul_agent_addresses: dict[str, str] = field(default_factory=dict)
    data_volumes: dict[str, str] = field(default_factory=dict)  # instance id -> volume at spotmax:persistence_dev

    @property
    def instance_ids(self) -> list[str]:
        return [i.instance_id for i in self.instances]

    def by_node(self) -> dict[str, FleetInstance]:
        return {i.node_name: i for i in self.instances}


def group_tags(
    world: World,
    *,
    consul_port: int = DEFAULT_CONSUL_PORT,
    delays: int = 0,
    drain_grace: int = 30,
    extra: dict[str, str] | None = None,
) -> dict[str, str]:
    """The group's ``spotmax:`` settings (``delays`` for every delay tag: 0 in the benchmark)."""
    return {
        "spotmax:k8s_config_file_path": str(world.kubeconfig),
        "spotmax:consul_port": str(consul_port),
        "spotmax:k8s_delay_draining_secs": str(delays),
        "spotmax:detaching_delay_seconds": str(delays),
        "spotmax:sd_delay_detach_secs": str(delays),
        "spotmax:k8s_node_drain_grace_second": str(drain_grace),
        **(extra or {}),
    }


def seed_fleet(
    world: World,
    size: int,
    *,
    name: str = "spotmax-fleet",
    standby_size: int | None = None,
    pods_per_node: int = 5,
    services_per_node: int = 2,
    delays: int = 0,
    extra_tags: dict[str, str] | None = None,
    persistence_dev: str | None = None,
    zones: tuple[str, ...] = ZONES,
) -> Fleet:
    """Create the fleet described in the module docstring; ``standby_size=None`` makes no standby group.

    ``persistence_dev`` (e.g. ``/dev/sdf``) tags the group ``spotmax:persistence_dev`` and gives each
    instance a data volume at that device. ``zones`` are the groups' availability zones.
    """
    if size < 1:
        raise ValueError(f"size: {size} is not allowed; use 1 or more")
    if not 0 <= services_per_node <= len(SERVICE_NAMES):
        raise ValueError(f"services_per_node: {services_per_node} is not allowed; use 0 to {len(SERVICE_NAMES)}")
    if pods_per_node < 0:
        raise ValueError(f"pods_per_node: {pods_per_node} is not allowed; use 0 or more")
    if not zones or not set(zones) <= set(ZONES):
        raise ValueError(f"zones: {zones!r} is not allowed; use one or more of {', '.join(ZONES)}")
    extra = dict(extra_tags or {})
    if persistence_dev is not None:
        extra["spotmax:persistence_dev"] = persistence_dev
    tags = group_tags(world, delays=delays, extra=extra)
    queue_url, queue_arn, dlq_url = _queue(world, name)
    rules = _rules(world, name, queue_arn)
    template = f"{name}-lt"
    _auto_scaling_group(world, name, template, size, tags, zones)
    standby = None
    if standby_size is not None:
        standby = f"{name}-standby"
        _standby_group(world, standby, name, standby_size, size, zones)
    described = _described_instances(world, name)
    volumes = _data_volumes(world, described, persistence_dev) if persistence_dev is not None else {}
    pdbs = _kubernetes(world, described, pods_per_node)
    instances, addresses = _consul(world, described, pods_per_node, services_per_node)
    return Fleet(
        group=name,
        standby_group=standby,
        launch_template=template,
        queue_url=queue_url,
        queue_arn=queue_arn,
        dlq_url=dlq_url,
        rules=rules,
        group_tags=tags,
        instances=instances,
        pdbs=pdbs,
        consul_agent_addresses=addresses,
        data_volumes=volumes,
    )


# -- AWS ------------------------------------------------------------------------------------------
def _queue(world: World, name: str) -> tuple[str, str, str]:
    sqs = world.aws.client("sqs")
    dlq_url = sqs.create_queue(QueueName=f"{name}-interruptions-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    redrive = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": MAX_RECEIVE_COUNT})
    queue_url = sqs.create_queue(
        QueueName=f"{name}-interruptions", Attributes={"RedrivePolicy": redrive, "VisibilityTimeout": "300"}
    )["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return str(queue_url), str(queue_arn), str(dlq_url)


def _rules(world: World, name: str, queue_arn: str) -> tuple[str, ...]:
    events = world.aws.client("events")
    names = []
    for kind, pattern in EVENT_PATTERNS.items():
        rule = f"{name}-{kind}".replace("_", "-")
        events.put_rule(Name=rule, EventPattern=json.dumps(pattern), State="ENABLED")
        events.put_targets(Rule=rule, Targets=[{"Id": "interruptions", "Arn": queue_arn}])
        names.append(rule)
    return tuple(names)


def _tag_list(group: str, tags: dict[str, str]) -> list[dict[str, Any]]:
    return [
        {"ResourceId": group, "ResourceType": "auto-scaling-group", "Key": k, "Value": v, "PropagateAtLaunch": p}
        for k, v, p in [("spotmax:group", group, True), *((k, v, False) for k, v in sorted(tags.items()))]
    ]


def _auto_scaling_group(
    world: World, name: str, template: str, size: int, tags: dict[str, str], zones: tuple[str, ...]
) -> None:
    world.aws.client("ec2").create_launch_template(
        LaunchTemplateName=template, LaunchTemplateData={"ImageId": AMI, "InstanceType": INSTANCE_TYPES[0]}
    )
    world.aws.client("autoscaling").create_auto_scaling_group(
        AutoScalingGroupName=name,
        MinSize=0,
        MaxSize=size * 2,
        DesiredCapacity=size,
        AvailabilityZones=list(zones),
        MixedInstancesPolicy={
            "LaunchTemplate": {
                "LaunchTemplateSpecification": {"LaunchTemplateName": template, "Version": "$Latest"},
                "Overrides": [{"InstanceType": t} for t in INSTANCE_TYPES],
            },
            "InstancesDistribution": {
                "OnDemandBaseCapacity": 0,
                "OnDemandPercentageAboveBaseCapacity": 0,
                "SpotAllocationStrategy": "price-capacity-optimized",
            },
        },
        Tags=_tag_list(name, tags),
    )


def _standby_group(world: World, standby: str, group: str, desired: int, size: int, zones: tuple[str, ...]) -> None:
    template = f"{standby}-lt"
    world.aws.client("ec2").create_launch_template(
        LaunchTemplateName=template, LaunchTemplateData={"ImageId": AMI, "InstanceType": INSTANCE_TYPES[0]}
    )
    world.aws.client("autoscaling").create_auto_scaling_group(
        AutoScalingGroupName=standby,
        LaunchTemplate={"LaunchTemplateName": template, "Version": "$Latest"},
        MinSize=0,
        MaxSize=max(size, desired),
        DesiredCapacity=desired,
        AvailabilityZones=list(zones),
        Tags=[
            {
                "ResourceId": standby,
                "ResourceType": "auto-scaling-group",
                "Key": "spotmax:standby_for",
                "Value": group,
                "PropagateAtLaunch": False,
            }
        ],
    )


def _described_instances(world: World, group: str) -> list[dict[str, Any]]:
    """The group's instances, read off moto's models (DescribeInstances pages take seconds at 500)."""
    with RUNTIME.lock:
        backend = autoscaling_backends[world.aws.account_id][world.aws.region]
        states = backend.autoscaling_groups[group].instance_states
        found = [
            {
                "InstanceId": state.instance.id,
                "InstanceType": state.instance.instance_type,
                "Placement": {"AvailabilityZone": state.instance.placement.zone},
                "PrivateIpAddress": state.instance.private_ip,
                "PrivateDnsName": state.instance.private_dns_name,
            }
            for state in states
        ]
    return sorted(found, key=lambda i: str(i["InstanceId"]))


def _data_volumes(world: World, described: list[dict[str, Any]], device: str) -> dict[str, str]:
    """A volume per instance at ``device``, deleted with the instance unless the pipeline protects it."""
    ec2 = world.aws.client("ec2")
    volumes = {}
    for instance in described:
        instance_id = instance["InstanceId"]
        volume = ec2.create_volume(
            AvailabilityZone=instance["Placement"]["AvailabilityZone"], Size=DATA_VOLUME_GIB, VolumeType="gp3"
        )["VolumeId"]
        ec2.attach_volume(VolumeId=volume, InstanceId=instance_id, Device=device)
        ec2.modify_instance_attribute(
            InstanceId=instance_id, BlockDeviceMappings=[{"DeviceName": device, "Ebs": {"DeleteOnTermination": True}}]
        )
        volumes[instance_id] = str(volume)
    return volumes


# -- Kubernetes -----------------------------------------------------------------------------------
def _pod_name(slot: int, index: int) -> str:
    return f"app-{slot}-{index:05d}"


def _kubernetes(world: World, described: list[dict[str, Any]], pods_per_node: int) -> tuple[str, ...]:
    k8s = world.kubernetes
    slots = range(pods_per_node)
    guarded_slots: set[int] = set()
    for index, instance in enumerate(described):
        zone = instance["Placement"]["AvailabilityZone"]
        node = instance["PrivateDnsName"]
        k8s.add_node(
            node,
            provider_id=f"aws:///{zone}/{instance['InstanceId']}",
            labels={
                "node.kubernetes.io/instance-type": instance["InstanceType"],
                "topology.kubernetes.io/zone": zone,
                "eks.amazonaws.com/capacityType": "SPOT",
            },
        )
        for slot in slots:
            labels = {"app": f"app-{slot}"}
            if (index * pods_per_node + slot) % 3 == 2:
                labels[GUARDED_LABEL] = "true"
                guarded_slots.add(slot)
            k8s.add_pod(
                _pod_name(slot, index),
                NAMESPACE,
                node_name=node,
                labels=labels,
                owner_kind="ReplicaSet",
                owner_name=f"app-{slot}",
            )
    pdbs = []
    for slot in sorted(guarded_slots):
        k8s.add_pdb(
            f"app-{slot}", NAMESPACE, match_labels={"app": f"app-{slot}", GUARDED_LABEL: "true"}, max_unavailable=1
        )
        pdbs.append(f"app-{slot}")
    return tuple(pdbs)


# -- Consul ---------------------------------------------------------------------------------------
def _consul(
    world: World, described: list[dict[str, Any]], pods_per_node: int, services_per_node: int
) -> tuple[tuple[FleetInstance, ...], dict[str, str]]:
    consul = world.consul
    instances, addresses = [], {}
    for index, instance in enumerate(described):
        node = instance["PrivateDnsName"]
        port = consul.add_agent(node, instance["PrivateIpAddress"])
        services = [
            {"ID": f"{service}-{index:05d}", "Name": service, "Port": 8080 + number, "Tags": ["spotmax-world"]}
            for number, service in enumerate(SERVICE_NAMES[:services_per_node])
        ]
        consul.register_services(node, services)
        addresses[node] = f"127.0.0.1:{port}"
        instances.append(
            FleetInstance(
                instance_id=instance["InstanceId"],
                zone=instance["Placement"]["AvailabilityZone"],
                instance_type=instance["InstanceType"],
                private_ip=instance["PrivateIpAddress"],
                node_name=node,
                consul_agent=addresses[node],
                pods=tuple(_pod_name(slot, index) for slot in range(pods_per_node)),
                services=tuple(str(s["ID"]) for s in services),
            )
        )
    return tuple(instances), addresses
