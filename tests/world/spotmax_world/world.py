"""Start and stop the whole local world (AWS, Kubernetes API, Consul) as one unit."""

from __future__ import annotations

import json
import pathlib
import secrets
from typing import Any

from spotmax_world.aws import AwsEmulator
from spotmax_world.consul import ConsulEmulator
from spotmax_world.kubernetes import KubernetesEmulator

REGION = "us-east-1"
# moto accepts any credentials; these make sure nothing real is ever picked up.
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
# The EKS cluster whose API is the Kubernetes emulator (DescribeCluster endpoint and CA, EKS tokens).
EKS_CLUSTER = "spotmax-world"


class World:
    """The three test doubles on 127.0.0.1 with free ports.

    The AWS side has one EKS cluster, :data:`EKS_CLUSTER`, whose endpoint and CA are the Kubernetes
    emulator's; the emulator accepts EKS tokens for it signed with :data:`CREDENTIALS`.

    ``workdir`` receives the kubeconfig and ``world.json`` (every address and token), so other
    processes (playbooks, molecule, the benchmark) can find the world.
    """

    def __init__(self, workdir: pathlib.Path, *, consul_acl: bool = False, kubernetes_tls: bool = False) -> None:
        self.workdir = pathlib.Path(workdir)
        # The AMI catalogue lets playbooks look images up the way they would in a real account.
        self.aws = AwsEmulator(region=REGION, default_amis=True)
        self.kubernetes = KubernetesEmulator(tls=kubernetes_tls)
        self.consul_token = secrets.token_hex(16) if consul_acl else None
        self.consul = ConsulEmulator(acl_enabled=consul_acl, management_token=self.consul_token)
        self.kubeconfig = self.workdir / "kubeconfig"
        self.state_file = self.workdir / "world.json"

    def start(self) -> World:
        self.workdir.mkdir(parents=True, exist_ok=True)
        try:
            self.aws.start()
            self.kubernetes.start()
            self.consul.start()
            self.aws.serve_eks(self.kubernetes.url, self.kubernetes.ca_pem, [EKS_CLUSTER])
            self.kubernetes.register_eks_cluster(
                EKS_CLUSTER, {CREDENTIALS["AWS_ACCESS_KEY_ID"]: CREDENTIALS["AWS_SECRET_ACCESS_KEY"]}
            )
        except BaseException:
            self.stop()
            raise
        self.kubernetes.write_kubeconfig(self.kubeconfig)
        self.state_file.write_text(json.dumps(self.describe(), indent=2), encoding="utf-8")
        return self

    def stop(self) -> None:
        for emulator in (self.consul, self.kubernetes, self.aws):
            try:
                emulator.stop()
            except Exception:  # noqa: S112 - stop the others even if one was never started
                continue

    def __enter__(self) -> World:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def describe(self) -> dict[str, Any]:
        return {
            "region": REGION,
            "aws_url": self.aws.url,
            "kubernetes_url": self.kubernetes.url,
            "kubernetes_token": self.kubernetes.token,
            "kubeconfig": str(self.kubeconfig),
            "eks_cluster_name": EKS_CLUSTER,
            "consul_url": self.consul.url,
            "consul_token": self.consul_token,
        }

    def environment(self) -> dict[str, str]:
        """Variables that point boto3, amazon.aws, kubernetes.core and Consul clients at the world."""
        env = {
            **CREDENTIALS,
            "AWS_ENDPOINT_URL": self.aws.url,
            "AWS_URL": self.aws.url,
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_EC2_METADATA_DISABLED": "true",
            "K8S_AUTH_KUBECONFIG": str(self.kubeconfig),
            "KUBECONFIG": str(self.kubeconfig),
            "CONSUL_HTTP_ADDR": self.consul.url,
            "SPOTMAX_WORLD": str(self.state_file),
            "SPOTMAX_WORLD_AWS_URL": self.aws.url,
            "SPOTMAX_WORLD_KUBERNETES_URL": self.kubernetes.url,
            "SPOTMAX_WORLD_CONSUL_URL": self.consul.url,
        }
        if self.consul_token:
            env["CONSUL_HTTP_TOKEN"] = self.consul_token
        return env

    def integration_config(self) -> dict[str, Any]:
        """Variables for ``ansible-test integration`` (tests/integration/integration_config.yml)."""
        return {
            "aws_access_key": CREDENTIALS["AWS_ACCESS_KEY_ID"],
            "aws_secret_key": CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            "aws_region": REGION,
            "aws_endpoint_url": self.aws.url,
            "kubeconfig": str(self.kubeconfig),
            "kubernetes_url": self.kubernetes.url,
            "eks_cluster_name": EKS_CLUSTER,
            "consul_url": self.consul.url,
            "consul_token": self.consul_token,
        }
