"""The interruption pipeline against a running :class:`~spotmax_world.world.World`: the benchmark, e2e tests and demo.

* :func:`install_collection`: the collection as ansible-galaxy builds it from a checkout, installed
  into a collections path of its own.
* :func:`rulebook_variables`: the rulebook's ``interruption_*`` variables for a seeded
  :class:`~spotmax_world.fleet.Fleet`.
* :class:`Rulebook`: ``ansible-rulebook -r <rulebook> -i inventory.yml --vars vars.json`` in its own
  session (stopping it stops the playbooks it started too), its output in a log file;
  :meth:`Rulebook.wait_until_polling` waits (bounded) until its event source polls the queue.
* :class:`Storm`: fires Spot interruption warnings for the whole fleet (EventBridge -> SQS) and
  records, per instance, when it first reached each of :data:`MILESTONES`.

The world must run in this process: the milestones are read off the emulators' state directly
(no API request, nothing counted).
"""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from typing import Any

from moto.autoscaling.models import autoscaling_backends
from moto.sqs.models import sqs_backends

from spotmax_world.fleet import Fleet
from spotmax_world.moto_ext.runtime import RUNTIME
from spotmax_world.world import World

DEFAULT_RULEBOOK = "spotmax.maxgroup.handle_interruptions"
# cordoned: the node is unschedulable; drained: no evictable pod left on it; deregistered: its
# Consul agent holds none of its services; replaced: it left its Auto Scaling group (replacement
# requested); acked: no message naming it is left on the queue.
MILESTONES = ("cordoned", "drained", "deregistered", "replaced", "acked")
POLL = 0.1
READY_TIMEOUT = 180.0
BIN = pathlib.Path(sys.executable).parent


def install_collection(source: pathlib.Path | str, workdir: pathlib.Path | str) -> pathlib.Path:
    """Build the collection at ``source`` into ``workdir/dist``, install it into ``workdir/collections``
    (no dependencies: they come with the ``ansible`` package) and return that collections path."""
    dist, collections = pathlib.Path(workdir) / "dist", pathlib.Path(workdir) / "collections"
    galaxy = str(BIN / "ansible-galaxy")
    subprocess.run(
        [galaxy, "collection", "build", "--force", "--output-path", str(dist), str(source)],
        check=True,
        capture_output=True,
    )
    tarball = next(dist.glob("spotmax-maxgroup-*.tar.gz"))
    # --force: a copy already on ANSIBLE_COLLECTIONS_PATH (make install) would be kept otherwise.
    subprocess.run(
        [galaxy, "collection", "install", "--force", "--offline", "--no-deps", "-p", str(collections), str(tarball)],
        check=True,
        capture_output=True,
    )
    return collections


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (from /proc), whatever session it moved to."""
    children: dict[int, list[int]] = {}
    for entry in pathlib.Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    found: list[int] = []
    pending = [pid]
    while pending:
        for child in children.get(pending.pop(), []):
            found.append(child)
            pending.append(child)
    return found


def signal_all(pids: list[int], sig: int) -> None:
    """Signal each process of ``pids`` that still exists."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


class RulebookError(RuntimeError):
    """ansible-rulebook exited, or did not poll the queue in time."""


def rulebook_variables(world: World, fleet: Fleet, **extra: Any) -> dict[str, Any]:
    """The rulebook's variables for ``fleet`` (queue, region, endpoint, Consul agents), then ``extra``."""
    env = world.environment()
    return {
        "interruption_queue_url": fleet.queue_url,
        "interruption_region": env["AWS_REGION"],
        "interruption_endpoint_url": env["AWS_ENDPOINT_URL"],
        "interruption_consul_agent_addresses": fleet.consul_agent_addresses,
        **extra,
    }


class Rulebook:
    """``ansible-rulebook`` with the collection installed in ``collections``, run in ``workdir``.

    :meth:`start` (re)writes ``workdir/vars.json`` from :attr:`variables` and ``workdir/inventory.yml``;
    the output is appended to ``log`` (default ``workdir/rulebook.log``), so a rulebook restarted in
    the same directory keeps one log.
    """

    def __init__(
        self,
        world: World,
        collections: pathlib.Path | str,
        workdir: pathlib.Path | str,
        variables: Mapping[str, Any],
        *,
        rulebook: str = DEFAULT_RULEBOOK,
        log: pathlib.Path | str | None = None,
    ) -> None:
        self.world = world
        self.rulebook = rulebook  # a path or spotmax.maxgroup.<name>
        self.workdir = pathlib.Path(workdir)
        self.variables = dict(variables)
        self.variables_file = self.workdir / "vars.json"
        self.inventory = self.workdir / "inventory.yml"
        self.log = pathlib.Path(log) if log is not None else self.workdir / "rulebook.log"
        self.env = {
            **os.environ,
            **world.environment(),
            "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            "ANSIBLE_COLLECTIONS_PATH": str(collections),
            "AWS_CONFIG_FILE": "/dev/null",
            "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
            "ANSIBLE_NOCOLOR": "1",
        }
        self.process: subprocess.Popen[bytes] | None = None
        self._started = 0.0
        self._polls_before = 0

    def start(self) -> Rulebook:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.log.parent.mkdir(parents=True, exist_ok=True)
        self.variables_file.write_text(json.dumps(self.variables, indent=2), encoding="utf-8")
        self.inventory.write_text(
            "all:\n  hosts:\n    localhost:\n      ansible_connection: local\n"
            f"      ansible_python_interpreter: {sys.executable}\n",
            encoding="utf-8",
        )
        command = [
            str(BIN / "ansible-rulebook"),
            "-r",
            self.rulebook,
            "-i",
            str(self.inventory),
            "--vars",
            str(self.variables_file),
        ]
        self._polls_before = self.world.aws.requests().get("sqs:ReceiveMessage", 0)
        self._started = time.monotonic()
        with self.log.open("ab") as output:
            self.process = subprocess.Popen(
                command, cwd=self.workdir, env=self.env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
            )
        return self

    @property
    def returncode(self) -> int | None:
        """None while it runs (or before :meth:`start`)."""
        return None if self.process is None else self.process.poll()

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def wait_until_polling(self, timeout: float = READY_TIMEOUT) -> float:
        """Seconds from :meth:`start` until the event source's first ``ReceiveMessage`` (at most ``timeout``)."""
        if self.process is None:
            raise RulebookError("the rulebook was not started")
        while time.monotonic() - self._started < timeout:
            if self.process.poll() is not None:
                raise RulebookError(
                    f"ansible-rulebook exited with {self.process.returncode} before polling"
                    f" (log: {self.log}):\n{self.tail()}"
                )
            if self.world.aws.requests().get("sqs:ReceiveMessage", 0) > self._polls_before:
                return time.monotonic() - self._started
            time.sleep(POLL)
        raise RulebookError(f"ansible-rulebook did not poll the queue within {timeout:.0f} s (log: {self.log})")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Signal the rulebook and every playbook it started (a machine dying mid-storm)."""
        if self.process is not None and self.process.poll() is None:
            # ansible-runner starts each playbook in a session of its own: killpg alone would orphan them.
            playbooks = descendants(self.process.pid)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, sig)
            signal_all(playbooks, sig)
            self.process.wait(timeout=30)

    def stop(self, grace: float = 20.0) -> None:
        """SIGTERM to its session (ansible-rulebook, its JVM and playbooks); SIGKILL after ``grace`` seconds."""
        if self.process is None or self.process.poll() is not None:
            return
        playbooks = descendants(self.process.pid)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            self.kill()
        signal_all(playbooks, signal.SIGKILL)

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace") if self.log.exists() else ""

    def tail(self, chars: int = 3000) -> str:
        return self.output()[-chars:]

    def __enter__(self) -> Rulebook:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


# -- what the pipeline did, read off the in-process world -----------------------------------------
def queue_notices(world: World, fleet: Fleet, cache: dict[str, str]) -> dict[str, float]:
    """Instance id -> earliest SentTimestamp (s) of the messages on the fleet's queue that name it.

    ``cache`` maps message ids to the instance id they name (bodies are parsed once).
    """
    name = fleet.queue_url.rsplit("/", 1)[-1]
    with RUNTIME.lock:
        messages = list(sqs_backends[world.aws.account_id][world.aws.region].get_queue(name)._messages)
    found: dict[str, float] = {}
    for message in messages:
        if message.id not in cache:
            try:
                cache[message.id] = str(json.loads(message.body).get("detail", {}).get("instance-id", ""))
            except ValueError:
                cache[message.id] = ""
        instance_id = cache[message.id]
        sent = float(message.sent_timestamp or 0) / 1000
        found[instance_id] = min(sent, found.get(instance_id, sent))
    return found


def group_members(world: World, group: str) -> set[str]:
    """The instance ids in the Auto Scaling group ``group`` (empty when there is no such group)."""
    with RUNTIME.lock:
        found = autoscaling_backends[world.aws.account_id][world.aws.region].autoscaling_groups.get(group)
        return {s.instance.id for s in found.instance_states} if found is not None else set()


def reached_milestones(world: World, fleet: Fleet, cache: dict[str, str]) -> dict[str, set[str]]:
    """Per milestone, the fleet's instance ids that reached it now."""
    nodes = world.kubernetes.node_states()
    services = world.consul.services_by_agent()
    members = group_members(world, fleet.group)
    queued = queue_notices(world, fleet, cache)
    reached: dict[str, set[str]] = {m: set() for m in MILESTONES}
    for instance in fleet.instances:
        node = nodes.get(instance.node_name)
        if node is None or node["unschedulable"]:
            reached["cordoned"].add(instance.instance_id)
        if node is None or node["pods"] == 0:
            reached["drained"].add(instance.instance_id)
        if not set(services.get(instance.node_name, [])) & set(instance.services):
            reached["deregistered"].add(instance.instance_id)
        if instance.instance_id not in members:
            reached["replaced"].add(instance.instance_id)
        if instance.instance_id not in queued:
            reached["acked"].add(instance.instance_id)
    return reached


class Storm:
    """Spot interruption warnings for every instance of ``fleet``, and when each instance reached each milestone.

    :attr:`instances` maps instance id -> ``{"landed": s, <milestone>: s, ...}``: seconds from the
    storm (:attr:`started`, epoch seconds) until its first message was on the queue and until it
    first reached each milestone (absent until it does).
    """

    def __init__(self, world: World, fleet: Fleet) -> None:
        self.world = world
        self.fleet = fleet
        self.started = 0.0
        self.instances: dict[str, dict[str, float | None]] = {}
        self.reached: dict[str, set[str]] = {m: set() for m in MILESTONES}
        self._cache: dict[str, str] = {}

    def fire(self) -> dict[str, Any]:
        """Send the warnings (the emulator's answer: ``interrupted`` ids ...) and note when they landed."""
        self.started = time.time()
        fired: dict[str, Any] = self.world.aws.interrupt(self.fleet.instance_ids)
        landed = queue_notices(self.world, self.fleet, self._cache)
        self.instances = {
            i: {"landed": round(landed[i] - self.started, 3) if i in landed else None} for i in self.fleet.instance_ids
        }
        return fired

    def observe(self) -> dict[str, set[str]]:
        """Read the world once; record the first time each instance reached each milestone."""
        now = time.time()
        self.reached = reached_milestones(self.world, self.fleet, self._cache)
        for milestone, ids in self.reached.items():
            for instance_id in ids:
                self.instances[instance_id].setdefault(milestone, round(now - self.started, 3))
        return self.reached

    @property
    def elapsed(self) -> float:
        return time.time() - self.started

    @property
    def complete(self) -> bool:
        """Every instance reached every milestone (at the last :meth:`observe`)."""
        size = len(self.fleet.instances)
        return all(len(ids) == size for ids in self.reached.values())

    def follow(
        self, rulebook: Rulebook, timeout: float, on_poll: Callable[[Storm], None] | None = None
    ) -> dict[str, set[str]]:
        """:meth:`observe` every :data:`POLL` s until complete, ``timeout`` s after the storm or the rulebook's exit.

        ``on_poll`` is called after each observation (progress reports).
        """
        deadline = self.started + timeout
        while True:
            now = time.time()
            reached = self.observe()
            if on_poll is not None:
                on_poll(self)
            if self.complete or now > deadline or rulebook.returncode is not None:
                return reached
            time.sleep(POLL)
