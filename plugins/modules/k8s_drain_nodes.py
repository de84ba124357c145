#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright: Contributors to the spotmax.maxgroup project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: k8s_drain_nodes
version_added: 0.1.0
short_description: Cordon, taint and drain many Kubernetes nodes at once, within a deadline
description:
  - Drains a batch of nodes, for example the nodes of Spot instances that got their two-minute interruption
    warning. Nodes are found by EC2 instance id (the end of C(spec.providerID), C(aws:///<zone>/<instance-id>))
    in one listing of the cluster's nodes, and/or by name.
  - Every node of the batch is cordoned and tainted first, concurrently; only then does eviction start, so
    evicted pods are never rescheduled onto another node of the batch.
  - Pods are evicted with the Eviction API, which respects PodDisruptionBudgets. An eviction refused by a budget
    (HTTP 429) is tried again every second until O(drain_timeout) or O(deadline), whichever comes first;
    pods still not evicted then are reported in RV(nodes[].not_evicted), which is not a failure.
  - Like C(kubectl drain), mirror pods, finished pods (C(Succeeded) or C(Failed), which hold no resources and go
    with the node) and pods already terminating are left alone, DaemonSet pods too with
    O(delete_options.ignore_daemonsets). Pods without a controller (unless O(delete_options.force)) and pods
    with emptyDir volumes (unless O(delete_options.delete_emptydir_data)) are not evicted and are reported.
  - With O(state=absent) the Node objects are deleted, with their pods (grace period 0) except DaemonSet pods,
    as the node lifecycle controller and the pod garbage collector would; for instances that are already gone.
  - A node already cordoned and tainted with nothing left to evict is not written to.
  - Connects with a kubeconfig (the kubernetes.core options below) or, with O(eks_cluster_name), with AWS
    credentials only.
author:
  - spotmax.maxgroup maintainers (@spotmax)
options:
  instance_ids:
    description:
      - EC2 instance ids whose nodes to act on (matched against the end of C(spec.providerID)).
      - An id without a node is reported in RV(missing).
      - At least one of O(instance_ids) and O(node_names) must be non-empty.
    type: list
    elements: str
    default: []
  node_names:
    description:
      - Names of nodes to act on; a name without a node is reported in RV(missing).
    type: list
    elements: str
    default: []
  state:
    description:
      - V(drained) cordons and taints the nodes, then evicts their pods.
      - V(cordoned) only cordons and taints them.
      - V(absent) deletes the Node objects and their pods but DaemonSet pods (grace period 0), without eviction.
    type: str
    choices: [drained, cordoned, absent]
    default: drained
  add_taint:
    description:
      - Whether to add O(taint) when cordoning. V(false) only cordons (C(spec.unschedulable)).
    type: bool
    default: true
  taint:
    description:
      - The taint to add. A taint with the same key and effect gets this value; other taints are kept.
      - C(timeAdded) is set for the V(NoExecute) effect.
    type: dict
    suboptions:
      key:
        description: The taint's key.
        type: str
        default: spotmax.io/interruption
      value:
        description: The taint's value.
        type: str
        default: spot
      effect:
        description: The taint's effect.
        type: str
        choices: [NoSchedule, PreferNoSchedule, NoExecute]
        default: NoSchedule
  delete_options:
    description:
      - How pods are evicted; the names of M(kubernetes.core.k8s_drain).
    type: dict
    suboptions:
      terminate_grace_period:
        description:
          - Upper bound, in seconds, of the grace period of evicted pods (a pod's own shorter period is kept).
          - Unset, each pod's own C(terminationGracePeriodSeconds) applies.
        type: int
      force:
        description:
          - Also evict pods not managed by a controller (ReplicaSet, StatefulSet, Job, ...); they are not re-created.
          - When V(false), such pods are reported in RV(nodes[].not_evicted).
        type: bool
        default: false
      ignore_daemonsets:
        description:
          - Leave DaemonSet pods running (their controller would re-create them at once).
          - When V(false), DaemonSet pods are reported in RV(nodes[].not_evicted).
        type: bool
        default: true
      delete_emptydir_data:
        description:
          - Also evict pods with emptyDir volumes (their data is lost).
          - When V(false), such pods are reported in RV(nodes[].not_evicted).
        type: bool
        default: false
      disable_eviction:
        description:
          - Delete pods instead of evicting them. This B(bypasses PodDisruptionBudgets).
        type: bool
        default: false
      wait_timeout:
        description:
          - After the evictions, wait up to this many seconds (never past O(drain_timeout) or O(deadline)) until the
            evicted pods are gone; those still terminating are reported in RV(nodes[].terminating).
          - Unset, the module returns once the evictions are accepted.
        type: int
      wait_sleep:
        description: Seconds between checks while waiting (O(delete_options.wait_timeout)).
        type: int
        default: 5
  delay_seconds:
    description:
      - Seconds to wait between cordoning and the first eviction (MaxGroup's C(spotmax:k8s_delay_draining_secs)),
        never past O(drain_timeout) or O(deadline). Not waited in check mode.
    type: float
    default: 0
  drain_timeout:
    description:
      - Seconds from the start of the run after which evictions refused by a PodDisruptionBudget are no longer retried.
    type: float
    default: 90
  deadline:
    description:
      - ISO 8601 timestamp (UTC when it has no offset) after which evictions are no longer retried, for example the
        Spot interruption warning's time plus 120 seconds (the normalised event's C(deadline)).
      - The earlier of O(deadline) and O(drain_timeout) applies. Every pod is still tried once when it has passed.
    type: str
  concurrency:
    description:
      - How many API calls run at once (1 to 200).
    type: int
    default: 20
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
    details:
      - Reports what would be cordoned, tainted, evicted and deleted; writes nothing and waits for nothing.
        Whether a PodDisruptionBudget would refuse an eviction is not known in check mode.
  diff_mode:
    support: full
  platform:
    platforms: aws
notes:
  - Pods are listed per node (C(fieldSelector=spec.nodeName=<node>)), concurrently, as C(kubectl drain) does.
  - "Permissions needed: list, get and patch nodes, list pods, create C(pods/eviction); also delete pods with
    O(delete_options.disable_eviction) or O(state=absent), and delete nodes with O(state=absent)."
  - A node is patched with its C(resourceVersion); when another writer changed it in between (HTTP 409),
    the node is read again and the patch computed again, up to five times.
seealso:
  - module: kubernetes.core.k8s_drain
  - name: Safely drain a node
    description: Evictions, PodDisruptionBudgets and what C(kubectl drain) skips.
    link: https://kubernetes.io/docs/tasks/administer-cluster/safely-drain-node/
"""

EXAMPLES = r"""
- name: Drain the nodes of interrupted Spot instances before the instances go away
  spotmax.maxgroup.k8s_drain_nodes:
    kubeconfig: ~/.kube/prod
    instance_ids: "{{ spotmax.events | map(attribute='instance_id') | list }}"
    deadline: "{{ spotmax.events | map(attribute='deadline') | reject('none') | min | default(omit) }}"
    delay_seconds: 10
    delete_options:
      terminate_grace_period: 60
  register: drained

- name: Report the pods a PodDisruptionBudget kept on the nodes
  ansible.builtin.debug:
    msg: "{{ drained.nodes | map(attribute='not_evicted') | flatten }}"

- name: Cordon only, with a NoExecute taint, through EKS with AWS credentials
  spotmax.maxgroup.k8s_drain_nodes:
    eks_cluster_name: prod
    region: eu-west-1
    instance_ids: [i-0123456789abcdef0]
    state: cordoned
    taint:
      effect: NoExecute

- name: Forget the nodes of instances that are already terminated
  spotmax.maxgroup.k8s_drain_nodes:
    kubeconfig: ~/.kube/prod
    instance_ids: [i-0123456789abcdef0, i-0fedcba9876543210]
    state: absent
"""

RETURN = r"""
nodes:
  description: One entry per node found, in the order asked for.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: The node's name.
      type: str
      sample: ip-10-0-1-23.ec2.internal
    instance_id:
      description: The EC2 instance id from its C(spec.providerID); null when it has none.
      type: str
      sample: i-0123456789abcdef0
    cordoned:
      description: Whether the node is unschedulable after the run (in check mode, would be).
      type: bool
    tainted:
      description: Whether the node carries O(taint) after the run (always false with O(add_taint=false)).
      type: bool
    evicted:
      description:
        - Pods (C(namespace/name)) evicted, or deleted with O(delete_options.disable_eviction) or O(state=absent);
          in check mode, those that would be.
      type: list
      elements: str
      sample: ["default/web-7d4b9c-x2x8l"]
    not_evicted:
      description: Pods left on the node that should have been evicted, and why.
      type: list
      elements: dict
      contains:
        pod:
          description: C(namespace/name).
          type: str
        reason:
          description: Why it was not evicted (PodDisruptionBudget refusal, no controller, emptyDir data, DaemonSet).
          type: str
      sample: [{"pod": "default/web-1", "reason": "refused by its PodDisruptionBudget until the drain deadline: ..."}]
    terminating:
      description: Evicted pods still terminating when O(delete_options.wait_timeout) ran out.
      type: list
      elements: str
    deleted:
      description: Whether the Node object was deleted (O(state=absent)).
      type: bool
    seconds:
      description: Seconds from the start of the run until this node was done (cordoned, evicted or given up, waited).
      type: float
      sample: 3.217
missing:
  description: Instance ids and node names asked for that have no node.
  returned: always
  type: list
  elements: str
  sample: ["i-0fedcba9876543210"]
diff:
  description: Per node name, before and after the run (in check mode, what it would be).
  returned: when diff mode is on
  type: dict
  contains:
    before:
      description:
        - Per node name, C(unschedulable), C(taints) and, when pods are acted on, C(pods) (C(namespace/name)).
      type: dict
    after:
      description: The same after the run; deleted nodes are not in it.
      type: dict
"""

import json
import time
import traceback
from concurrent.futures import ThreadPoolExecutor

from ansible.module_utils.basic import missing_required_lib
from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule

from ansible_collections.spotmax.maxgroup.plugins.module_utils import drain, kubernetes_connect
from ansible_collections.spotmax.maxgroup.plugins.module_utils import kubernetes as k8s

PAGE_SIZE = 500
PATCH_ATTEMPTS = 5
NOT_FOUND = 404
CONFLICT = 409
TOO_MANY_REQUESTS = 429


def _json(response):
    return json.loads(response.data or b"null")


def list_nodes(api):
    nodes, token = [], None
    while True:
        page = _json(api.list_node(limit=PAGE_SIZE, _continue=token, _preload_content=False))
        nodes.extend(page.get("items") or [])
        token = (page.get("metadata") or {}).get("continue")
        if not token:
            return nodes


def list_pods(api, node):
    selector = f"spec.nodeName={node}"
    return _json(api.list_pod_for_all_namespaces(field_selector=selector, _preload_content=False)).get("items") or []


def _now():
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class Drainer:
    """The run's I/O: every decision comes from module_utils/drain.py."""

    def __init__(self, api, request, check_mode, pool):
        self.api = api
        self.request = request
        self.check_mode = check_mode
        self.pool = pool
        self.start = time.monotonic()
        self.stop = drain.stop_time(self.start, time.time(), request.drain_timeout, request.deadline)
        self.pods = {}  # node name -> pods listed after the cordon
        self.plans = {}  # node name -> drain.PodPlan

    def elapsed(self):
        return time.monotonic() - self.start

    def _api_error(self, what, exc):
        if isinstance(exc, k8s.ApiException):
            return f"{what}: {k8s.api_error_message(exc)}"
        return f"{what}: {exc}"

    # -- phase 1: cordon and taint (and list the pods) ----------------------------------------
    def cordon(self, outcome, node):
        name = outcome.name
        step = "cordon"
        try:
            for _attempt in range(PATCH_ATTEMPTS):
                patch = drain.cordon_patch(node, self.request.taint, _now())
                if patch is None:
                    break
                if self.check_mode:
                    node = drain.apply_cordon(node, patch)
                    outcome.changed = True
                    break
                try:
                    node = _json(self.api.patch_node(name, patch, _preload_content=False))
                except k8s.ApiException as exc:
                    if exc.status != CONFLICT:
                        raise
                    node = _json(self.api.read_node(name, _preload_content=False))
                    continue
                outcome.changed = True
                break
            else:
                outcome.error = f"changed by another writer on each of {PATCH_ATTEMPTS} attempts to cordon it"
            if self.request.state == "drained" and not outcome.error:
                step = "list pods"
                self.pods[name] = list_pods(self.api, name)
        except (k8s.ApiException, k8s.Urllib3Error) as exc:
            outcome.error = self._api_error(step, exc)
        spec = node.get("spec") or {}
        outcome.cordoned = bool(spec.get("unschedulable"))
        outcome.tainted = drain.has_taint(node, self.request.taint)
        if name in self.pods:
            outcome.before["pods"] = sorted(drain.pod_ref(pod) for pod in self.pods[name])
        outcome.after = drain.node_view(node, outcome.before.get("pods"))
        outcome.seconds = self.elapsed()

    # -- phase 2: evict, retrying PodDisruptionBudget refusals until the stop time ------------
    def evict_one(self, pod):
        grace = drain.grace_seconds(pod, self.request.delete.terminate_grace_period)
        meta = pod["metadata"]
        try:
            if self.request.delete.disable_eviction:
                body = drain.delete_options_body(pod, grace)
                self.api.delete_namespaced_pod(meta["name"], meta["namespace"], body=body, _preload_content=False)
            else:
                body = drain.eviction_body(pod, grace)
                self.api.create_namespaced_pod_eviction(meta["name"], meta["namespace"], body, _preload_content=False)
        except k8s.ApiException as exc:
            if exc.status in (NOT_FOUND, CONFLICT):
                return "gone", None  # deleted meanwhile, or a new pod of the same name
            if exc.status == TOO_MANY_REQUESTS:
                return "refused", k8s.api_error_message(exc)
            return "error", self._api_error(f"evict pod {drain.pod_ref(pod)}", exc)
        except k8s.Urllib3Error as exc:
            return "error", self._api_error(f"evict pod {drain.pod_ref(pod)}", exc)
        return "evicted", None

    def evict(self, outcomes):
        pending = []
        for outcome in outcomes:
            if outcome.error or outcome.name not in self.pods:
                continue
            plan = drain.classify_pods(self.pods[outcome.name], self.request.delete)
            self.plans[outcome.name] = plan
            outcome.not_evicted.extend(plan.blocked)
            pending.extend((outcome, pod) for pod in plan.evict)
        if self.check_mode:
            for outcome, pod in pending:
                outcome.evicted.append(drain.pod_ref(pod))
                outcome.changed = True
            return
        if pending:
            first = drain.eviction_start(time.monotonic(), self.request.delay_seconds, self.stop)
            time.sleep(max(0.0, first - time.monotonic()))
        refusals, retry = {}, []
        while pending:
            retry = []
            for outcome, pod, status, message in self.pool.map(lambda job: (*job, *self.evict_one(job[1])), pending):
                if status == "evicted":
                    outcome.evicted.append(drain.pod_ref(pod))
                    outcome.changed = True
                elif status == "refused":
                    refusals[id(pod)] = message
                    retry.append((outcome, pod))
                elif status == "error" and not outcome.error:
                    outcome.error = message
                if status != "refused":
                    outcome.seconds = self.elapsed()
            pending = [(outcome, pod) for outcome, pod in retry if not outcome.error]
            pause = drain.next_retry(time.monotonic(), self.stop) if pending else None
            if pause is None:
                break
            time.sleep(pause)
        for outcome, pod in retry:
            outcome.not_evicted.append({"pod": drain.pod_ref(pod), "reason": drain.refusal_reason(refusals[id(pod)])})
            outcome.seconds = self.elapsed()

    # -- phase 3 (optional): wait until the evicted pods are gone -----------------------------
    def wait(self, outcomes):
        options = self.request.delete
        if options.wait_timeout is None or self.check_mode:
            return
        waiting = {}  # node name -> (outcome, uids of its evicted pods)
        for outcome in outcomes:
            refs = set(outcome.evicted)
            plan = self.plans.get(outcome.name, drain.PodPlan())
            uids = {pod["metadata"].get("uid") for pod in plan.evict if drain.pod_ref(pod) in refs}
            if uids:
                waiting[outcome.name] = (outcome, uids)
        until = min(time.monotonic() + options.wait_timeout, max(self.stop, time.monotonic()))
        left = {}  # node name -> evicted pods still there at the last check
        while waiting:
            for outcome, pods in self.pool.map(lambda job: (job[0], self._still_there(*job)), list(waiting.values())):
                if pods:
                    waiting[outcome.name] = (outcome, {pod["metadata"].get("uid") for pod in pods})
                    left[outcome.name] = sorted(drain.pod_ref(pod) for pod in pods)
                else:
                    if pods is not None:
                        outcome.seconds = self.elapsed()
                    del waiting[outcome.name]
            if not waiting or time.monotonic() + options.wait_sleep > until:
                break
            time.sleep(options.wait_sleep)
        for name, (outcome, _uids) in waiting.items():
            outcome.terminating = left[name]
            outcome.seconds = self.elapsed()

    def _still_there(self, outcome, uids):
        """The evicted pods (by uid) still on the node; None after an API error (recorded)."""
        try:
            pods = list_pods(self.api, outcome.name)
        except (k8s.ApiException, k8s.Urllib3Error) as exc:
            outcome.error = outcome.error or self._api_error("list pods", exc)
            return None
        return [pod for pod in pods if pod["metadata"].get("uid") in uids]

    # -- state=absent -------------------------------------------------------------------------
    def remove(self, outcome):
        name = outcome.name
        try:
            pods = list_pods(self.api, name)
            outcome.before["pods"] = sorted(drain.pod_ref(pod) for pod in pods)
            for pod in drain.pods_to_delete(pods):
                if not self.check_mode:
                    meta = pod["metadata"]
                    try:
                        self.api.delete_namespaced_pod(
                            meta["name"],
                            meta["namespace"],
                            body=drain.delete_options_body(pod, 0),
                            _preload_content=False,
                        )
                    except k8s.ApiException as exc:
                        if exc.status not in (NOT_FOUND, CONFLICT):
                            raise
                        continue
                outcome.evicted.append(drain.pod_ref(pod))
            if not self.check_mode:
                try:
                    self.api.delete_node(name, _preload_content=False)
                except k8s.ApiException as exc:
                    if exc.status != NOT_FOUND:
                        raise
            outcome.deleted = outcome.changed = True
            outcome.after = None
        except (k8s.ApiException, k8s.Urllib3Error) as exc:
            outcome.error = self._api_error("delete", exc)
        outcome.seconds = self.elapsed()


def run(drainer, selected):
    request = drainer.request
    outcomes = [
        drain.NodeOutcome(
            name=drain.node_name(node), instance_id=drain.node_instance_id(node), before=drain.node_view(node, None)
        )
        for node in selected
    ]
    if request.state == "absent":
        list(drainer.pool.map(drainer.remove, outcomes))
        return outcomes
    # Every node of the batch is cordoned before the first eviction.
    list(drainer.pool.map(drainer.cordon, outcomes, selected))
    if request.state == "drained":
        drainer.evict(outcomes)
        drainer.wait(outcomes)
        evicted = {outcome.name: set(outcome.evicted) for outcome in outcomes}
        for outcome in outcomes:
            if outcome.after is not None and "pods" in outcome.after:
                outcome.after["pods"] = sorted(set(outcome.after["pods"]) - evicted[outcome.name])
    return outcomes


def main():
    argument_spec = dict(
        instance_ids=dict(type="list", elements="str", default=[]),
        node_names=dict(type="list", elements="str", default=[]),
        state=dict(type="str", choices=list(drain.STATES), default="drained"),
        add_taint=dict(type="bool", default=True),
        taint=dict(
            type="dict",
            options=dict(
                key=dict(type="str", default=drain.DEFAULT_TAINT["key"], no_log=False),
                value=dict(type="str", default=drain.DEFAULT_TAINT["value"]),
                effect=dict(type="str", choices=list(drain.TAINT_EFFECTS), default=drain.DEFAULT_TAINT["effect"]),
            ),
        ),
        delete_options=dict(
            type="dict",
            options=dict(
                terminate_grace_period=dict(type="int"),
                force=dict(type="bool", default=False),
                ignore_daemonsets=dict(type="bool", default=True),
                delete_emptydir_data=dict(type="bool", default=False),
                disable_eviction=dict(type="bool", default=False),
                wait_timeout=dict(type="int"),
                wait_sleep=dict(type="int", default=5),
            ),
        ),
        delay_seconds=dict(type="float", default=0),
        drain_timeout=dict(type="float", default=90),
        deadline=dict(type="str"),
        concurrency=dict(type="int", default=20),
        **kubernetes_connect.argument_spec(),
    )
    module = AnsibleAWSModule(
        argument_spec=argument_spec, supports_check_mode=True, mutually_exclusive=kubernetes_connect.MUTUALLY_EXCLUSIVE
    )
    if not k8s.HAS_KUBERNETES:
        module.fail_json(msg=missing_required_lib("kubernetes"), exception=k8s.KUBERNETES_IMPORT_ERROR)
    params = module.params
    try:
        request = drain.validate_request(
            params["instance_ids"],
            params["node_names"],
            params["state"],
            params["add_taint"],
            params["taint"],
            params["delete_options"],
            params["delay_seconds"],
            params["drain_timeout"],
            params["deadline"],
            params["concurrency"],
        )
    except drain.DrainValidationError as exc:
        module.fail_json(msg=str(exc))

    configuration, where = kubernetes_connect.configuration(module)
    configuration.connection_pool_maxsize = request.concurrency
    api = k8s.core_v1(configuration)
    try:
        nodes = list_nodes(api)
    except k8s.ApiException as exc:
        module.fail_json(msg=f"Failed to list the nodes on {where}: {k8s.api_error_message(exc)}", status=exc.status)
    except k8s.Urllib3Error as exc:
        module.fail_json(msg=f"Failed to reach {where}: {exc}", exception=traceback.format_exc())
    selected, missing = drain.select_nodes(nodes, request.instance_ids, request.node_names)

    with ThreadPoolExecutor(max_workers=request.concurrency) as pool:
        outcomes = run(Drainer(api, request, module.check_mode, pool), selected)

    result = dict(
        changed=any(outcome.changed for outcome in outcomes),
        nodes=[outcome.describe() for outcome in outcomes],
        missing=missing,
    )
    if module._diff:
        result["diff"] = drain.diff(outcomes)
    failure = drain.failure_message(outcomes)
    if failure:
        module.fail_json(msg=f"{failure} (on {where})", **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
