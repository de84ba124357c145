# -*- coding: utf-8 -*-

# Copyright: Contributors to the spotmax.maxgroup project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Reaching an EKS cluster's Kubernetes API with AWS credentials only (no ``aws`` CLI, no kubeconfig).

:func:`cluster_endpoint` reads the API endpoint and CA from ``eks:DescribeCluster``;
:func:`eks_token` builds the bearer token ``aws eks get-token`` prints: a presigned STS
``GetCallerIdentity`` URL that also signs the ``x-k8s-aws-id`` header (the cluster name), encoded as
``k8s-aws-v1.`` + unpadded base64url. The cluster's authenticator replays the URL against STS with its
own name in that header, so a token only works for the cluster it was made for.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any

TOKEN_PREFIX = "k8s-aws-v1."  # noqa: S105 - a format marker, not a secret
CLUSTER_ID_HEADER = "x-k8s-aws-id"
# What the AWS CLI uses; the EKS authenticator accepts a token for at most 15 minutes.
TOKEN_EXPIRES_SECONDS = 60
MAX_TOKEN_EXPIRES_SECONDS = 900
USABLE_STATUSES = ("ACTIVE", "UPDATING")


class EksError(ValueError):
    """A cluster that cannot be reached (yet); the message names the option."""


@dataclass(frozen=True)
class ClusterEndpoint:
    """Where a cluster's Kubernetes API listens and the CA (PEM) its certificate chains to."""

    name: str
    endpoint: str
    ca_pem: bytes | None


def cluster_endpoint(client: Any, name: str) -> ClusterEndpoint:
    """Describe cluster ``name`` with an EKS client wrapped in ``AWSRetry`` (botocore errors propagate)."""
    cluster = client.describe_cluster(aws_retry=True, name=name)["cluster"]
    status = cluster.get("status", "ACTIVE")
    endpoint = cluster.get("endpoint")
    if status not in USABLE_STATUSES or not endpoint:
        raise EksError(
            f"eks_cluster_name: cluster {name!r} is {status} and its API is not available; "
            f"use a cluster in status {' or '.join(USABLE_STATUSES)}"
        )
    return ClusterEndpoint(
        name, endpoint.rstrip("/"), decode_ca((cluster.get("certificateAuthority") or {}).get("data"))
    )


def decode_ca(data: str | None) -> bytes | None:
    """``certificateAuthority.data`` (base64 PEM) as PEM bytes; None when the cluster reports none."""
    if not data:
        return None
    try:
        pem = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise EksError(f"eks_cluster_name: the cluster's certificateAuthority.data is not base64 ({exc})") from exc
    if b"-----BEGIN CERTIFICATE-----" not in pem:
        raise EksError("eks_cluster_name: the cluster's certificateAuthority.data is not a PEM certificate")
    return pem


def eks_token(session_or_client: Any, cluster_name: str, expires: int = TOKEN_EXPIRES_SECONDS) -> str:
    """A bearer token for cluster ``cluster_name``, like ``aws eks get-token --cluster-name NAME``.

    ``session_or_client`` is an STS client (for example ``module.client("sts")``, without a retry
    wrapper) or a boto3 Session to make one from. No request is sent: the token is a signed URL.
    """
    if not 0 < expires <= MAX_TOKEN_EXPIRES_SECONDS:
        raise ValueError(f"expires: {expires} is not allowed; use 1 to {MAX_TOKEN_EXPIRES_SECONDS} seconds")
    sts = session_or_client
    if not hasattr(sts, "generate_presigned_url"):
        sts = session_or_client.client("sts")
    event = f"before-sign.{sts.meta.service_model.service_id.hyphenize()}.GetCallerIdentity"

    def add_cluster_header(request: Any, **_kwargs: Any) -> None:
        request.headers[CLUSTER_ID_HEADER] = cluster_name

    sts.meta.events.register(event, add_cluster_header)
    try:
        url = sts.generate_presigned_url("get_caller_identity", Params={}, ExpiresIn=expires, HttpMethod="GET")
    finally:
        sts.meta.events.unregister(event, add_cluster_header)
    return TOKEN_PREFIX + base64.urlsafe_b64encode(str(url).encode()).decode().rstrip("=")


def token_url(token: str) -> str:
    """The presigned URL inside a token made by :func:`eks_token` (for checks and debugging)."""
    if not token.startswith(TOKEN_PREFIX):
        raise ValueError(f"not an EKS token: it does not start with {TOKEN_PREFIX}")
    encoded = token[len(TOKEN_PREFIX) :]
    return base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
