"""Command line of the local world.

``python -m spotmax_world exec [--integration-config FILE] -- COMMAND...``
    start the world, run COMMAND with the world's variables in its environment, stop the world,
    exit with COMMAND's status. Nothing is left running.
``python -m spotmax_world run [--workdir DIR]``
    start the world and keep it up until interrupted (SIGINT/SIGTERM); ``DIR/world.json`` tells
    where everything listens.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import signal
import subprocess
import sys
import tempfile
import threading

from spotmax_world.world import World


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m spotmax_world", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--consul-acl", action="store_true", help="turn on Consul ACLs (a management token is generated)"
    )
    parser.add_argument("--kubernetes-tls", action="store_true", help="serve the Kubernetes API over HTTPS")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="start the world until interrupted")
    run.add_argument("--workdir", type=pathlib.Path, default=None)
    run_cmd = sub.add_parser("exec", help="run a command against a fresh world")
    run_cmd.add_argument("--workdir", type=pathlib.Path, default=None)
    run_cmd.add_argument(
        "--integration-config",
        type=pathlib.Path,
        default=None,
        help="also write ansible-test's integration_config.yml here",
    )
    run_cmd.add_argument("argv", nargs=argparse.REMAINDER)
    return parser


def _run(world: World) -> int:
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    print(json.dumps(world.describe(), indent=2), flush=True)
    stop.wait()
    return 0


def _exec(world: World, argv: list[str], integration_config: pathlib.Path | None) -> int:
    if argv and argv[0] == "--":
        argv = argv[1:]
    if not argv:
        print("exec: give a command after --", file=sys.stderr)
        return 2
    if integration_config is not None:
        # YAML is a superset of JSON: no YAML library needed to write the file.
        integration_config.write_text(json.dumps(world.integration_config(), indent=2) + "\n", encoding="utf-8")
    env = {**os.environ, **world.environment()}
    try:
        return subprocess.run(argv, env=env, check=False).returncode
    except KeyboardInterrupt:
        return 130
    finally:
        if integration_config is not None:
            integration_config.unlink(missing_ok=True)


def main(args: list[str] | None = None) -> int:
    options = _parser().parse_args(args)
    with tempfile.TemporaryDirectory(prefix="spotmax-world-") as scratch:
        workdir = options.workdir or pathlib.Path(scratch)
        with World(workdir, consul_acl=options.consul_acl, kubernetes_tls=options.kubernetes_tls) as world:
            if options.command == "run":
                return _run(world)
            return _exec(world, options.argv, options.integration_config)


if __name__ == "__main__":
    sys.exit(main())
