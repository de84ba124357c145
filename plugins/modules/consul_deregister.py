#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright: Contributors to the spotmax.maxgroup project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: consul_deregister
version_added: 0.1.0
short_description: Deregister the Consul services of instances that are going away
description:
  - Takes the Consul services of many EC2 instances out of service at once, for example the Spot instances
    named by an interruption batch, within the two minutes before they are reclaimed.
  - The Consul node of an instance is the catalog node whose C(Address) is the instance's private IP.
    Instances without such a node are reported with a null RV(consul_deregistrations[].node); that is not an
    error.
  - One catalog read matches every instance to its node; the work per node then runs on a bounded pool of
    O(concurrency) threads, each request limited to O(timeout) seconds and the whole run to O(deadline) seconds.
  - In agent mode the module talks to the node's own agent, at the node's address and O(agent_port) (or
    O(instances[].agent_port), or O(agent_addresses)). It checks that the agent is the expected node, enables
    node maintenance (O(maintenance)), then deregisters the agent's services. The agent forgets them, so its
    anti-entropy cannot register them again.
  - In catalog mode the module removes the node's services from the catalog with C(PUT /v1/catalog/deregister).
    That is the only way once the agent is gone; while the agent lives, its anti-entropy registers them again
    (the module warns when the node's C(serfHealth) check says so). The catalog cannot set node maintenance.
  - When some instances fail, the module still does all it can for the others, then fails with every result in
    RV(consul_deregistrations) and a message naming the failed instances and the Consul error (status and body).
author:
  - spotmax.maxgroup maintainers (@spotmax)
options:
  instances:
    description: The instances whose services to deregister.
    type: list
    elements: dict
    required: true
    suboptions:
      instance_id:
        description: The EC2 instance ID.
        type: str
        required: true
      private_ip:
        description: The instance's private IP address, the C(Address) of its Consul node.
        type: str
        required: true
      agent_port:
        description:
          - Port of this instance's Consul agent (the group's C(spotmax:consul_port) tag).
          - Defaults to O(agent_port).
        type: int
  mode:
    description:
      - V(agent) goes through each node's agent, V(catalog) through the catalog API.
      - V(auto) uses the agent when it answers within O(timeout) and the catalog when it cannot be reached
        (connection refused, timeout). An agent that answers with an error status is an error, not a reason
        to fall back.
    type: str
    choices: [auto, agent, catalog]
    default: auto
  maintenance:
    description:
      - In agent mode, enable node maintenance (with O(reason)) before deregistering, so that nothing routes to
        the node while its services go away.
      - Node maintenance is never disabled by this module.
    type: bool
    default: true
  reason:
    description: The reason recorded with node maintenance.
    type: str
    default: Spot instance is being interrupted (spotmax.maxgroup.consul_deregister)
  services:
    description:
      - Deregister only the services with these names or IDs.
      - Omit it to deregister every service of the node except C(consul).
    type: list
    elements: str
  agent_port:
    description: Port of the nodes' Consul agents when O(instances[].agent_port) is not set.
    type: int
    default: 8500
  agent_addresses:
    description:
      - Where an agent answers, as C(host:port) or C(scheme://host:port), by Consul node name or instance ID;
        used instead of the node's address and agent port.
      - For agents behind NAT or port mappings, and for test doubles whose node addresses are not routable.
    type: dict
  timeout:
    description: Seconds one HTTP request may take. In V(auto) mode, an agent that does not answer within it is gone.
    type: float
    default: 5
  deadline:
    description:
      - Seconds the whole run may take. Requests are cut to what is left of it; instances not done by then
        are reported as failed.
      - Pass the time left before the instances are reclaimed (a Spot interruption warning gives 120 seconds).
    type: float
    default: 90
  concurrency:
    description: How many nodes are worked on at the same time (1 to 256).
    type: int
    default: 20
  host:
    description:
      - Host of the Consul HTTP API used for the catalog (any agent or server of the datacenter).
      - When O(host), O(port) or O(scheme) is not set, it is taken from the E(CONSUL_HTTP_ADDR) environment variable
        of the host the module runs on (C([scheme://]host[:port]), as the Consul CLI reads it), else V(localhost),
        V(8500) and V(http).
    type: str
  port:
    description: Port of the Consul HTTP API used for the catalog. See O(host) for the default.
    type: int
  scheme:
    description:
      - Scheme of the Consul HTTP API used for the catalog. See O(host) for the default.
      - The agents are reached with the same scheme unless O(agent_addresses) names one.
    type: str
    choices: [http, https]
  validate_certs:
    description:
      - Whether to verify the TLS certificates of the catalog endpoint and the agents.
      - Defaults to the E(CONSUL_HTTP_SSL_VERIFY) environment variable when set.
    type: bool
    default: true
  ca_path:
    description:
      - The CA bundle that verifies the TLS certificates of the catalog endpoint and the agents.
      - Defaults to the E(CONSUL_CACERT) environment variable when set.
    type: path
  token:
    description:
      - The ACL token sent (as C(X-Consul-Token)) to the catalog endpoint and the agents. It needs
        C(node:write) on the nodes (maintenance, catalog deregistration) and C(service:write) on the services.
      - Defaults to the E(CONSUL_HTTP_TOKEN) environment variable when set.
    type: str
notes:
  - Use C(group/spotmax.maxgroup.consul) in O(ignore:module_defaults) to set the connection options once.
  - Deregistering through an agent needs the agent to be reachable from where the module runs; run the module on a
    host inside the network of the instances.
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.actiongroups
attributes:
  check_mode:
    support: full
    details: Reads the catalog and the agents, writes nothing, and reports what would be deregistered.
  diff_mode:
    support: full
  platform:
    platforms: posix
  action_group:
    support: full
    membership:
      - spotmax.maxgroup.consul
"""

EXAMPLES = r"""
- name: Deregister the services of the interrupted instances
  spotmax.maxgroup.consul_deregister:
    host: consul.internal
    token: "{{ consul_token }}"
    instances:
      - instance_id: i-0123456789abcdef0
        private_ip: 10.0.1.23
        agent_port: 8500
      - instance_id: i-0fedcba9876543210
        private_ip: 10.0.2.7
    deadline: 100
  register: deregistered

- name: Only the web service, through the catalog (the agents are gone already)
  spotmax.maxgroup.consul_deregister:
    instances: "{{ terminated }}"
    mode: catalog
    services: [web]

- name: Connection options for every Consul module of the collection
  module_defaults:
    group/spotmax.maxgroup.consul:
      host: consul.internal
      scheme: https
      ca_path: /etc/consul.d/ca.pem
  block:
    - name: Take the interrupted instances out of service
      spotmax.maxgroup.consul_deregister:
        instances: "{{ interrupted }}"
        reason: "Spot interruption {{ event_id }}"
"""

RETURN = r"""
consul_deregistrations:
  description:
    - One element per instance, in the order of O(instances).
    - In check mode, what would be done.
  returned: always
  type: list
  elements: dict
  contains:
    instance_id:
      description: The instance ID.
      type: str
      sample: i-0123456789abcdef0
    private_ip:
      description: The instance's private IP address.
      type: str
      sample: 10.0.1.23
    node:
      description: The instance's Consul node; null when no catalog node has its address.
      type: str
      sample: ip-10-0-1-23
    agent_address:
      description: The C(host:port) of the agent used in agent mode, else null.
      type: str
      sample: 10.0.1.23:8500
    mode:
      description:
        - How the services were deregistered, V(agent) or V(catalog).
        - Null when the instance has no node, or when it failed before a mode could be chosen.
      type: str
      sample: agent
    services:
      description: IDs of the services this run deregistered.
      type: list
      elements: str
      sample: [web, web-sidecar-proxy]
    maintenance:
      description: Whether node maintenance is enabled after the run.
      type: bool
      sample: true
    changed:
      description: Whether this run changed anything for this instance.
      type: bool
      sample: true
    error:
      description: Why this instance failed, with the Consul status and body; null when it did not.
      type: str
      sample: null
diff:
  description: With C(--diff), the services and maintenance state of each node before and after the run.
  returned: when diff mode is on
  type: dict
  contains:
    before:
      description: Node name to C({services, maintenance}) before the run.
      type: dict
      sample: {"ip-10-0-1-23": {"services": ["web"], "maintenance": false}}
    after:
      description: Node name to C({services, maintenance}) after the run.
      type: dict
      sample: {"ip-10-0-1-23": {"services": [], "maintenance": true}}
"""

import os

from ansible.module_utils.basic import AnsibleModule, env_fallback

from ansible_collections.spotmax.maxgroup.plugins.module_utils import consul


def settings(module):
    """Validated options, endpoints and jobs' inputs: every check before the first request."""
    params = module.params
    catalog = consul.catalog_endpoint(
        params["host"], params["port"], params["scheme"], os.environ.get("CONSUL_HTTP_ADDR")
    )
    options = consul.validate_options(
        params["mode"],
        params["maintenance"],
        params["reason"],
        params["services"],
        params["agent_port"],
        params["timeout"],
        params["deadline"],
        params["concurrency"],
    )
    instances = consul.validate_instances(params["instances"])
    agents = consul.validate_agent_addresses(params["agent_addresses"], catalog.scheme)
    return catalog, options, instances, agents


def main():
    argument_spec = dict(
        instances=dict(
            type="list",
            elements="dict",
            required=True,
            options=dict(
                instance_id=dict(type="str", required=True),
                private_ip=dict(type="str", required=True),
                agent_port=dict(type="int"),
            ),
        ),
        mode=dict(type="str", choices=list(consul.MODES), default="auto"),
        maintenance=dict(type="bool", default=True),
        reason=dict(type="str", default="Spot instance is being interrupted (spotmax.maxgroup.consul_deregister)"),
        services=dict(type="list", elements="str"),
        agent_port=dict(type="int", default=consul.DEFAULT_PORT),
        agent_addresses=dict(type="dict"),
        timeout=dict(type="float", default=5),
        deadline=dict(type="float", default=90),
        concurrency=dict(type="int", default=20),
        host=dict(type="str"),
        port=dict(type="int"),
        scheme=dict(type="str", choices=list(consul.SCHEMES)),
        validate_certs=dict(type="bool", default=True, fallback=(env_fallback, ["CONSUL_HTTP_SSL_VERIFY"])),
        ca_path=dict(type="path", fallback=(env_fallback, ["CONSUL_CACERT"])),
        token=dict(type="str", no_log=True, fallback=(env_fallback, ["CONSUL_HTTP_TOKEN"])),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    params = module.params
    try:
        catalog, options, instances, agents = settings(module)
    except consul.ConsulValidationError as exc:
        module.fail_json(msg=str(exc))

    client = consul.ConsulClient(
        params["token"], params["validate_certs"], params["ca_path"], options.timeout, consul.Clock(options.deadline)
    )
    try:
        nodes = consul.read_catalog_nodes(client, catalog) if instances else []
    except (consul.ConsulError, consul.DeadlineExceeded) as exc:
        module.fail_json(msg=f"Failed to read the Consul catalog: {exc}", consul_deregistrations=[])
    jobs = consul.plan_jobs(instances, nodes, agents, options.agent_port, catalog.scheme)
    outcomes = consul.deregister_all(client, catalog, jobs, options, module.check_mode)

    for outcome in outcomes:
        if outcome.warning:
            module.warn(outcome.warning)
    result = dict(
        changed=any(outcome.changed for outcome in outcomes),
        consul_deregistrations=[outcome.describe() for outcome in outcomes],
    )
    if module._diff:
        result["diff"] = consul.diff(outcomes)
    failure = consul.failure_message(outcomes)
    if failure:
        module.fail_json(msg=failure, **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
