#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright: Contributors to the spotmax.maxgroup project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: eks_auth_map
version_added: 0.1.0
short_description: Manage IAM mappings in the aws-auth ConfigMap of an EKS cluster
description:
  - Adds, updates or removes entries of the C(kube-system/aws-auth) ConfigMap (C(mapRoles), C(mapUsers),
    C(mapAccounts)), which maps IAM roles and users to Kubernetes users and groups, without editing YAML by hand.
  - Entries are matched by ARN; groups are compared as sets. Keys and entries the task does not list are kept
    (unless O(purge=true)). The ConfigMap is created when it is missing.
  - The ConfigMap is read and replaced with its C(resourceVersion); when another writer changed it in between
    (HTTP 409), the module reads it again, merges again and retries, up to five times.
  - Connects with a kubeconfig (the kubernetes.core options below) or, with O(eks_cluster_name), with AWS
    credentials only, as C(aws eks get-token) does, without the C(aws) CLI or a kubeconfig file.
  - Refuses any change that would remove a mapping carrying the C(system:nodes) group (nodes using that
    role could no longer join the cluster) unless O(allow_node_role_removal=true).
  - An aws-auth ConfigMap whose mappings are not valid YAML, or not lists of mappings, is never overwritten;
    the module fails and names the broken key.
author:
  - spotmax.maxgroup maintainers (@spotmax)
options:
  map_roles:
    description:
      - IAM roles to map (C(mapRoles)); omit to leave C(mapRoles) alone.
    type: list
    elements: dict
    suboptions:
      rolearn:
        description:
          - ARN of the IAM role, C(arn:<partition>:iam::<account id>:role/<name>), B(without) the role's path
            (aws-auth matches role ARNs without their path).
        type: str
        required: true
      username:
        description:
          - Kubernetes user name for the role; required with O(state=present).
          - May contain the placeholders C({{EC2PrivateDNSName}}), C({{EC2InstanceID}}), C({{AccountID}}),
            C({{SessionName}}), C({{SessionNameRaw}}) and C({{AccessKeyID}}); protect them from Ansible's
            templating with C(!unsafe) (see the examples).
        type: str
      groups:
        description:
          - Kubernetes groups of the role. Omitted means none.
        type: list
        elements: str
  map_users:
    description:
      - IAM users to map (C(mapUsers)); omit to leave C(mapUsers) alone.
    type: list
    elements: dict
    suboptions:
      userarn:
        description: ARN of the IAM user, C(arn:<partition>:iam::<account id>:user/<name>).
        type: str
        required: true
      username:
        description: Kubernetes user name for the user; required with O(state=present).
        type: str
      groups:
        description: Kubernetes groups of the user. Omitted means none.
        type: list
        elements: str
  map_accounts:
    description:
      - 12-digit AWS account ids whose IAM users and roles map to their own ARNs (C(mapAccounts)); omit to leave
        C(mapAccounts) alone. Quote them so YAML keeps leading zeros.
    type: list
    elements: str
  state:
    description:
      - V(present) adds the listed entries and updates the username and groups of listed ARNs already mapped.
      - V(absent) removes the listed ARNs and account ids (only the ARN of an entry matters).
    type: str
    choices: [present, absent]
    default: present
  purge:
    description:
      - With O(state=present), also remove the entries of O(map_roles), O(map_users) and O(map_accounts) that
        are not listed. Only the options given are purged; O(map_roles=[]) with O(purge=true) empties C(mapRoles).
      - Not allowed with O(state=absent).
    type: bool
    default: false
  allow_node_role_removal:
    description:
      - Allow a change that removes a mapping with the C(system:nodes) group, or drops C(system:nodes) from its
        groups, whether by O(state=absent), O(purge) or an update. Every node using that role leaves the cluster.
    type: bool
    default: false
extends_documentation_fragment:
  # First: its validate_certs (shared by AWS and Kubernetes) wins over the other fragments'.
  - spotmax.maxgroup.kubernetes.eks
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
  - spotmax.maxgroup.kubernetes
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
  platform:
    platforms: aws
requirements:
  - PyYAML (Python library)
notes:
  - "Least privilege: the original max_group setup maps the role the controller runs as (C(max_group_role)) to
    C(system:masters), by editing aws-auth by hand. Draining a node needs far less: get, list and patch nodes,
    list pods and create C(pods/eviction); removing the nodes of instances that are gone (the interruption
    pipeline on state changes, M(spotmax.maxgroup.k8s_drain_nodes) with
    O(spotmax.maxgroup.k8s_drain_nodes#module:state=absent)) adds delete on nodes and pods, as does
    deleting pods instead of evicting them (O(spotmax.maxgroup.k8s_drain_nodes#module:delete_options.disable_eviction))
    for pods. Bind a
    ClusterRole with exactly these rules to a group of your own (for example C(spotmax:node-drainers)) with
    M(kubernetes.core.k8s) and map the controller role to that group instead; the examples show both steps."
seealso:
  - name: Grant IAM users access to Kubernetes with a ConfigMap
    description: The aws-auth ConfigMap format.
    link: https://docs.aws.amazon.com/eks/latest/userguide/auth-configmap.html
  - module: kubernetes.core.k8s
"""

EXAMPLES = r"""
- name: Map the node role of a self-managed node group (keep existing entries)
  spotmax.maxgroup.eks_auth_map:
    eks_cluster_name: prod
    region: eu-west-1
    map_roles:
      - rolearn: arn:aws:iam::111122223333:role/prod-nodes
        username: !unsafe "system:node:{{EC2PrivateDNSName}}"
        groups: [system:bootstrappers, system:nodes]

# Least privilege for the interruption controller instead of system:masters:
# a ClusterRole that can only drain and remove nodes, bound to a group, and the controller role mapped to that group.
- name: ClusterRole that can cordon, drain and remove nodes, nothing else
  kubernetes.core.k8s:
    kubeconfig: ~/.kube/prod
    definition:
      apiVersion: rbac.authorization.k8s.io/v1
      kind: ClusterRole
      metadata:
        name: spotmax-node-drainer
      rules:
        - apiGroups: [""]
          resources: [nodes]
          verbs: [get, list, patch, delete]
        - apiGroups: [""]
          resources: [pods]
          verbs: [list, delete]
        - apiGroups: [""]
          resources: [pods/eviction]
          verbs: [create]

- name: Bind it to the group spotmax:node-drainers
  kubernetes.core.k8s:
    kubeconfig: ~/.kube/prod
    definition:
      apiVersion: rbac.authorization.k8s.io/v1
      kind: ClusterRoleBinding
      metadata:
        name: spotmax-node-drainers
      roleRef:
        apiGroup: rbac.authorization.k8s.io
        kind: ClusterRole
        name: spotmax-node-drainer
      subjects:
        - apiGroup: rbac.authorization.k8s.io
          kind: Group
          name: spotmax:node-drainers

- name: Map the controller role to that group
  spotmax.maxgroup.eks_auth_map:
    kubeconfig: ~/.kube/prod
    map_roles:
      - rolearn: arn:aws:iam::111122223333:role/spotmax-controller
        username: spotmax-controller
        groups: [spotmax:node-drainers]

- name: Remove an engineer and a trusted account
  spotmax.maxgroup.eks_auth_map:
    kubeconfig: ~/.kube/prod
    state: absent
    map_users:
      - userarn: arn:aws:iam::111122223333:user/alice
    map_accounts: ["444455556666"]

- name: Keep exactly these users (remove every other mapUsers entry), show what changes
  spotmax.maxgroup.eks_auth_map:
    kubeconfig: ~/.kube/prod
    purge: true
    map_users:
      - userarn: arn:aws:iam::111122223333:user/ops
        username: ops
        groups: [ops]
  diff: true
"""

RETURN = r"""
aws_auth:
  description:
    - The mappings of the ConfigMap after the run (in check mode, what they would be); empty when there is
      no ConfigMap.
    - Entries carry the ConfigMap's own keys, C(rolearn)/C(userarn), C(username) and C(groups), plus any other
      key an existing entry had.
  returned: always
  type: dict
  contains:
    map_roles:
      description: The C(mapRoles) entries.
      type: list
      elements: dict
      sample: [{"rolearn": "arn:aws:iam::111122223333:role/prod-nodes", "username": "system:node:{{EC2PrivateDNSName}}",
                "groups": ["system:bootstrappers", "system:nodes"]}]
    map_users:
      description: The C(mapUsers) entries.
      type: list
      elements: dict
      sample: [{"userarn": "arn:aws:iam::111122223333:user/ops", "username": "ops", "groups": ["ops"]}]
    map_accounts:
      description: The C(mapAccounts) account ids.
      type: list
      elements: str
      sample: ["111122223333"]
diff:
  description: The RV(aws_auth) value before and after the run.
  returned: when diff mode is on
  type: dict
  contains:
    before:
      description: The mappings before the run; empty when the ConfigMap did not exist.
      type: dict
    after:
      description: The mappings after the run.
      type: dict
"""

import traceback

from ansible.module_utils.basic import missing_required_lib
from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule

from ansible_collections.spotmax.maxgroup.plugins.module_utils import aws_auth as auth
from ansible_collections.spotmax.maxgroup.plugins.module_utils import kubernetes as k8s
from ansible_collections.spotmax.maxgroup.plugins.module_utils import kubernetes_connect

MAX_ATTEMPTS = 5
NOT_FOUND = 404
CONFLICT = 409


def read_configmap(api):
    try:
        return api.read_namespaced_config_map(auth.NAME, auth.NAMESPACE)
    except k8s.ApiException as exc:
        if exc.status == NOT_FOUND:
            return None
        raise


def write_configmap(api, configmap, data):
    """Create or replace (with the resourceVersion read) the ConfigMap; False on a 409 conflict."""
    try:
        if configmap is None:
            body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": auth.NAME}, "data": data}
            api.create_namespaced_config_map(auth.NAMESPACE, body)
        else:
            configmap.data = data
            api.replace_namespaced_config_map(auth.NAME, auth.NAMESPACE, configmap)
    except k8s.ApiException as exc:
        if exc.status == CONFLICT:
            return False
        raise
    return True


def ensure(module, api, request):
    """Read, merge, guard, write; on a concurrent write read again. Returns (changed, before, after)."""
    for _attempt in range(MAX_ATTEMPTS):
        configmap = read_configmap(api)
        data = configmap.data if configmap is not None else None
        current = auth.parse(data)
        after = auth.plan(current, request)
        losses = auth.node_access_losses(current, after, request)
        if losses and not module.params["allow_node_role_removal"]:
            module.fail_json(msg=auth.node_access_message(losses), aws_auth=auth.describe(current))
        before = current if configmap is not None else None
        if after == current:
            return False, before, current if configmap is not None else None
        if module.check_mode or write_configmap(api, configmap, auth.render(data, current, after)):
            return True, before, after
    module.fail_json(
        msg=f"{auth.CONFIGMAP} was changed by another writer on each of {MAX_ATTEMPTS} attempts; run the task again"
    )


def main():
    argument_spec = dict(
        map_roles=dict(
            type="list",
            elements="dict",
            options=dict(
                rolearn=dict(type="str", required=True),
                username=dict(type="str"),
                groups=dict(type="list", elements="str"),
            ),
        ),
        map_users=dict(
            type="list",
            elements="dict",
            options=dict(
                userarn=dict(type="str", required=True),
                username=dict(type="str"),
                groups=dict(type="list", elements="str"),
            ),
        ),
        map_accounts=dict(type="list", elements="str"),
        state=dict(type="str", choices=["present", "absent"], default="present"),
        purge=dict(type="bool", default=False),
        allow_node_role_removal=dict(type="bool", default=False),
        **kubernetes_connect.argument_spec(),
    )
    module = AnsibleAWSModule(
        argument_spec=argument_spec, supports_check_mode=True, mutually_exclusive=kubernetes_connect.MUTUALLY_EXCLUSIVE
    )
    if not auth.HAS_YAML:
        module.fail_json(msg=missing_required_lib("PyYAML"))
    if not k8s.HAS_KUBERNETES:
        module.fail_json(msg=missing_required_lib("kubernetes"), exception=k8s.KUBERNETES_IMPORT_ERROR)
    params = module.params
    try:
        request = auth.validate_request(
            params["state"], params["purge"], params["map_roles"], params["map_users"], params["map_accounts"]
        )
    except auth.AwsAuthError as exc:
        module.fail_json(msg=str(exc))

    api, where = kubernetes_connect.connect(module)
    try:
        changed, before, after = ensure(module, api, request)
    except auth.AwsAuthError as exc:
        module.fail_json(msg=str(exc))
    except k8s.ApiException as exc:
        module.fail_json(
            msg=f"Failed to manage {auth.CONFIGMAP} on {where}: {k8s.api_error_message(exc)}",
            status=exc.status,
        )
    except k8s.Urllib3Error as exc:
        module.fail_json(msg=f"Failed to reach {where}: {exc}", exception=traceback.format_exc())

    result = dict(changed=changed, aws_auth=auth.describe(after))
    if module._diff:
        result["diff"] = dict(before=auth.describe(before), after=auth.describe(after))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
