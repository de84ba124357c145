"""EKS clusters whose Kubernetes API is the world's Kubernetes emulator.

moto gives every cluster a random ``https://….eks.amazonaws.com`` endpoint and random bytes as its
certificate authority. Once :data:`RUNTIME.eks_api <spotmax_world.moto_ext.runtime.Runtime>` is set,
each cluster created afterwards (by ``CreateCluster`` or :func:`ensure_clusters`) reports the
emulator's URL as ``endpoint`` and the emulator's CA as ``certificateAuthority.data`` (base64 PEM,
as EKS does); an emulator without TLS has no CA, so ``certificateAuthority`` is then empty.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from moto.eks.models import Cluster, EKSBackend, eks_backends

from ._patch import original, patch
from .runtime import RUNTIME

KUBERNETES_VERSION = "1.31"  # what the emulator's /version reports


@dataclass(frozen=True)
class EksApi:
    """The Kubernetes API every EKS cluster of this world serves."""

    endpoint: str
    ca_pem: bytes | None = None

    def certificate_authority(self) -> dict[str, str]:
        return {"data": base64.b64encode(self.ca_pem).decode()} if self.ca_pem else {}


def _create_cluster(self: EKSBackend, *args: Any, **kwargs: Any) -> Cluster:
    cluster: Cluster = original(EKSBackend, "create_cluster")(self, *args, **kwargs)
    api = RUNTIME.eks_api
    if api is not None:
        cluster.endpoint = api.endpoint
        cluster.certificate_authority = api.certificate_authority()
    return cluster


def ensure_clusters(account_id: str, region: str, names: Iterable[str]) -> None:
    """Create the named clusters, or point existing ones at the current API (call with ``RUNTIME.lock`` held)."""
    backend: EKSBackend = eks_backends[account_id][region]
    api = RUNTIME.eks_api
    for name in names:
        cluster = backend.clusters.get(name)
        if cluster is None:
            backend.create_cluster(
                name=name,
                role_arn=f"arn:aws:iam::{account_id}:role/{name}-cluster",
                resources_vpc_config={},
                version=KUBERNETES_VERSION,
            )
        elif api is not None:
            cluster.endpoint = api.endpoint
            cluster.certificate_authority = api.certificate_authority()


def install() -> None:
    patch(EKSBackend, "create_cluster", _create_cluster)
