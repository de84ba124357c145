"""EKS in the world: DescribeCluster points at the Kubernetes emulator, which accepts EKS tokens.

Tokens are built here the way ``aws eks get-token`` builds them (a presigned STS GetCallerIdentity URL
that signs the ``x-k8s-aws-id`` header), independently of the collection's code.
"""

from __future__ import annotations

import base64
import json
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from spotmax_world import kubernetes_eks
from spotmax_world.aws import control as aws_control
from spotmax_world.world import CREDENTIALS, EKS_CLUSTER, World


def make_token(world: World, cluster: str, expires: int = 60, secret: str | None = None) -> str:
    sts = boto3.client(
        "sts",
        endpoint_url=world.aws.url,
        region_name=world.aws.region,
        aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=secret or CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    )

    def add_header(request: Any, **_kwargs: Any) -> None:
        request.headers["x-k8s-aws-id"] = cluster

    sts.meta.events.register("before-sign.sts.GetCallerIdentity", add_header)
    url = sts.generate_presigned_url("get_caller_identity", Params={}, ExpiresIn=expires, HttpMethod="GET")
    return "k8s-aws-v1." + base64.urlsafe_b64encode(url.encode()).decode().rstrip("=")


def core_api(world: World, token: str) -> client.CoreV1Api:
    """A client that trusts only the CA DescribeCluster reports, as a real EKS client would."""
    cluster = world.aws.client("eks").describe_cluster(name=EKS_CLUSTER)["cluster"]
    ca_file = world.workdir / "eks-ca.pem"
    ca_file.write_bytes(base64.b64decode(cluster["certificateAuthority"]["data"]))
    configuration = client.Configuration()
    configuration.host = cluster["endpoint"]
    configuration.api_key = {"authorization": f"Bearer {token}"}
    configuration.ssl_ca_cert = str(ca_file)
    return client.CoreV1Api(client.ApiClient(configuration))


def status_with(world: World, token: str) -> int:
    try:
        core_api(world, token).list_namespace()
    except ApiException as exc:
        return int(exc.status)
    return 200


def k8s_control(world: World, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    """Call a test control (no token) over the emulator's TLS, trusting its CA."""
    data = None if body is None else json.dumps(body).encode()
    url = f"{world.kubernetes.url}{path}"
    assert url.startswith("https://127.0.0.1:")
    request = urllib.request.Request(url, data=data, method=method)  # noqa: S310 - loopback https, checked above
    request.add_header("Content-Type", "application/json")
    context = ssl.create_default_context(cadata=(world.kubernetes.ca_pem or b"").decode())
    try:
        with urllib.request.urlopen(request, timeout=10, context=context) as response:  # noqa: S310 - see above
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """A world with the Kubernetes API on TLS (moto is one per process: one world per module)."""
    with World(tmp_path_factory.mktemp("eks-world"), kubernetes_tls=True) as started:
        yield started


@pytest.fixture(autouse=True)
def clean(world: World) -> None:
    world.kubernetes.reset()


def test_describe_cluster_points_at_the_emulator(world: World) -> None:
    cluster = world.aws.client("eks").describe_cluster(name=EKS_CLUSTER)["cluster"]
    assert cluster["endpoint"] == world.kubernetes.url
    assert cluster["endpoint"].startswith("https://127.0.0.1:")
    assert cluster["status"] == "ACTIVE"
    assert base64.b64decode(cluster["certificateAuthority"]["data"]) == world.kubernetes.ca_pem
    assert world.describe()["eks_cluster_name"] == EKS_CLUSTER
    assert world.integration_config()["eks_cluster_name"] == EKS_CLUSTER
    assert world.integration_config()["kubernetes_url"] == world.kubernetes.url


def test_cluster_survives_an_aws_reset(world: World) -> None:
    assert aws_control(world.aws.url, "POST", "reset") == (200, {"status": "ok"})
    eks = world.aws.client("eks")
    assert eks.list_clusters()["clusters"] == [EKS_CLUSTER]
    assert eks.describe_cluster(name=EKS_CLUSTER)["cluster"]["endpoint"] == world.kubernetes.url


def test_eks_token_is_accepted(world: World) -> None:
    names = {ns.metadata.name for ns in core_api(world, make_token(world, EKS_CLUSTER)).list_namespace().items}
    assert "kube-system" in names


@pytest.mark.parametrize(
    ("case", "build"),
    [
        ("another cluster", lambda w: make_token(w, "other-cluster")),
        ("wrong secret key", lambda w: make_token(w, EKS_CLUSTER, secret="not-the-secret")),
        ("garbage", lambda _w: "k8s-aws-v1.bm90LWEtdXJs"),
        ("not an EKS token", lambda _w: "some-other-token"),
    ],
)
def test_bad_tokens_are_rejected(world: World, case: str, build: Any) -> None:
    assert status_with(world, build(world)) == 401, case


def test_expired_token_is_rejected(world: World) -> None:
    # Only the refusal is asserted: on a loaded machine the 1-second token may already be expired at
    # its first use (fresh tokens being accepted is what the other tests show).
    token = make_token(world, EKS_CLUSTER, expires=1)
    deadline = time.monotonic() + 10
    while status_with(world, token) != 401:
        assert time.monotonic() < deadline, "the 1-second token was still accepted after 10 s"
        time.sleep(0.5)


def test_verify_names_the_reason(world: World) -> None:
    secrets = {CREDENTIALS["AWS_ACCESS_KEY_ID"]: CREDENTIALS["AWS_SECRET_ACCESS_KEY"]}
    token = make_token(world, EKS_CLUSTER)
    now = time.time()
    assert kubernetes_eks.verify(token, ["other", EKS_CLUSTER], secrets, now) == EKS_CLUSTER
    with pytest.raises(kubernetes_eks.TokenError, match="does not match any registered cluster"):
        kubernetes_eks.verify(token, ["other"], secrets, now)
    with pytest.raises(kubernetes_eks.TokenError, match="expired"):
        kubernetes_eks.verify(token, [EKS_CLUSTER], secrets, now + 61)
    with pytest.raises(kubernetes_eks.TokenError, match="unknown access key"):
        kubernetes_eks.verify(token, [EKS_CLUSTER], {}, now)
    with pytest.raises(kubernetes_eks.TokenError, match="X-Amz-Expires=3600"):
        kubernetes_eks.verify(make_token(world, EKS_CLUSTER, expires=3600), [EKS_CLUSTER], secrets, now)

    # A presigned URL for another STS action (or without the cluster header) is refused.
    url = kubernetes_eks._decode(token)
    other = url.replace("Action=GetCallerIdentity", "Action=AssumeRole")
    forged = kubernetes_eks.TOKEN_PREFIX + base64.urlsafe_b64encode(other.encode()).decode()
    with pytest.raises(kubernetes_eks.TokenError, match="not an STS GetCallerIdentity"):
        kubernetes_eks.verify(forged, [EKS_CLUSTER], secrets, now)
    query = parse_qs(urlsplit(url).query)
    assert query["X-Amz-SignedHeaders"] == ["host;x-k8s-aws-id"]
    unsigned = url.replace("X-Amz-SignedHeaders=host%3Bx-k8s-aws-id", "X-Amz-SignedHeaders=host")
    forged = kubernetes_eks.TOKEN_PREFIX + base64.urlsafe_b64encode(unsigned.encode()).decode()
    with pytest.raises(kubernetes_eks.TokenError, match="must sign exactly"):
        kubernetes_eks.verify(forged, [EKS_CLUSTER], secrets, now)


def test_static_token_still_works(world: World) -> None:
    assert status_with(world, world.kubernetes.token) == 200


def test_a_cluster_created_through_the_api_serves_the_emulator_too(world: World) -> None:
    eks = world.aws.client("eks")
    role = "arn:aws:iam::123456789012:role/other-cluster"
    eks.create_cluster(name="other-cluster", roleArn=role, resourcesVpcConfig={})
    cluster = eks.describe_cluster(name="other-cluster")["cluster"]
    assert cluster["endpoint"] == world.kubernetes.url
    assert base64.b64decode(cluster["certificateAuthority"]["data"]) == world.kubernetes.ca_pem
    # ... but tokens for it are refused until it is registered with the Kubernetes emulator.
    assert status_with(world, make_token(world, "other-cluster")) == 401
    eks.delete_cluster(name="other-cluster")


# -- the concurrent-write fault ------------------------------------------------------------------
def test_concurrent_write_makes_the_next_replace_conflict(world: World) -> None:
    core = core_api(world, world.kubernetes.token)
    core.create_namespaced_config_map(
        "kube-system", {"metadata": {"name": "aws-auth"}, "data": {"mapRoles": "- rolearn: a\n", "other": "x"}}
    )
    read = core.read_namespaced_config_map("aws-auth", "kube-system")
    status, faults = k8s_control(
        world,
        "POST",
        "/_emulator/faults/concurrent-write",
        {"namespace": "kube-system", "name": "aws-auth", "data": {"mapUsers": "- userarn: u\n", "other": None}},
    )
    assert status == 200
    assert faults["concurrent_writes"][0]["name"] == "aws-auth"

    read.data["mapRoles"] = "- rolearn: a\n- rolearn: b\n"
    with pytest.raises(ApiException) as conflict:
        core.replace_namespaced_config_map("aws-auth", "kube-system", read)
    assert conflict.value.status == 409
    assert json.loads(conflict.value.body)["reason"] == "Conflict"
    assert k8s_control(world, "GET", "/_emulator/faults") == (200, {"concurrent_writes": []})

    fresh = core.read_namespaced_config_map("aws-auth", "kube-system")
    assert int(fresh.metadata.resource_version) > int(read.metadata.resource_version)
    assert fresh.data == {"mapRoles": "- rolearn: a\n", "mapUsers": "- userarn: u\n"}
    fresh.data["mapRoles"] = "- rolearn: a\n- rolearn: b\n"
    core.replace_namespaced_config_map("aws-auth", "kube-system", fresh)  # the retry goes through
    final = core.read_namespaced_config_map("aws-auth", "kube-system").data
    assert final == {"mapRoles": "- rolearn: a\n- rolearn: b\n", "mapUsers": "- userarn: u\n"}


def test_concurrent_write_control_validates_and_clears(world: World) -> None:
    assert k8s_control(world, "POST", "/_emulator/faults/concurrent-write", {"name": "aws-auth"})[0] == 400
    bad = {"namespace": "kube-system", "name": "aws-auth", "data": {"k": 1}}
    assert k8s_control(world, "POST", "/_emulator/faults/concurrent-write", bad)[0] == 400
    good = {"namespace": "kube-system", "name": "aws-auth", "data": {"k": "v"}}
    assert k8s_control(world, "POST", "/_emulator/faults/concurrent-write", good)[0] == 200
    assert k8s_control(world, "DELETE", "/_emulator/faults") == (200, {"concurrent_writes": []})
    world.kubernetes.inject_concurrent_write("kube-system", "aws-auth", {"k": "v"})
    world.kubernetes.reset()
    assert world.kubernetes.faults() == {"concurrent_writes": []}
