# -*- coding: utf-8 -*-

# Copyright: Contributors to the spotmax.maxgroup project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import base64
import datetime
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest

from ansible_collections.spotmax.maxgroup.plugins.module_utils import eks

REGION = "us-east-1"
PEM = b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


@pytest.fixture(name="sts")
def sts_fixture():
    return boto3.client("sts", region_name=REGION, aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="secret")


def query_of(token):
    assert token.startswith("k8s-aws-v1.")
    encoded = token[len("k8s-aws-v1.") :]
    assert "=" not in encoded and "+" not in encoded and "/" not in encoded  # unpadded base64url
    url = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
    assert url == eks.token_url(token)
    return urlsplit(url), {key: values[0] for key, values in parse_qs(urlsplit(url).query).items()}


def test_token_is_a_presigned_get_caller_identity_signing_the_cluster_header(sts):
    token = eks.eks_token(sts, "prod")
    url, query = query_of(token)
    assert url.scheme == "https" and "sts" in url.hostname
    assert query["Action"] == "GetCallerIdentity"
    assert query["Version"] == "2011-06-15"
    assert query["X-Amz-Algorithm"] == "AWS4-HMAC-SHA256"
    assert query["X-Amz-SignedHeaders"] == "host;x-k8s-aws-id"
    assert query["X-Amz-Expires"] == "60"
    assert query["X-Amz-Credential"].startswith("AKIDEXAMPLE/")
    assert query["X-Amz-Credential"].endswith(f"/{REGION}/sts/aws4_request")
    issued = datetime.datetime.strptime(query["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=datetime.UTC)
    assert abs((datetime.datetime.now(datetime.UTC) - issued).total_seconds()) < 60
    assert len(query["X-Amz-Signature"]) == 64


def test_the_signature_depends_on_the_cluster_and_the_client_stays_clean(sts):
    _url, prod = query_of(eks.eks_token(sts, "prod"))
    _url, dev = query_of(eks.eks_token(sts, "dev"))
    assert prod["X-Amz-Signature"] != dev["X-Amz-Signature"]
    # The header hook is gone afterwards: a plain presigned URL signs only the host.
    plain = sts.generate_presigned_url("get_caller_identity", Params={}, ExpiresIn=60, HttpMethod="GET")
    assert parse_qs(urlsplit(plain).query)["X-Amz-SignedHeaders"] == ["host"]


def test_token_from_a_session_and_custom_expiry():
    session = boto3.Session(aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="secret", region_name=REGION)
    _url, query = query_of(eks.eks_token(session, "prod", expires=900))
    assert query["X-Amz-Expires"] == "900"
    with pytest.raises(ValueError, match="expires: 901 is not allowed"):
        eks.eks_token(session, "prod", expires=901)


def test_token_url_rejects_other_tokens():
    with pytest.raises(ValueError, match="not an EKS token"):
        eks.token_url("abc")


class FakeEks:
    def __init__(self, cluster):
        self.cluster = cluster

    def describe_cluster(self, aws_retry, name):
        assert aws_retry is True
        return {"cluster": {"name": name, **self.cluster}}


def test_cluster_endpoint_decodes_the_ca():
    found = eks.cluster_endpoint(
        FakeEks(
            {
                "status": "ACTIVE",
                "endpoint": "https://abc.gr7.us-east-1.eks.amazonaws.com/",
                "certificateAuthority": {"data": base64.b64encode(PEM).decode()},
            }
        ),
        "prod",
    )
    assert found == eks.ClusterEndpoint("prod", "https://abc.gr7.us-east-1.eks.amazonaws.com", PEM)


@pytest.mark.parametrize(
    ("cluster", "message"),
    [
        ({"status": "CREATING"}, "eks_cluster_name: cluster 'prod' is CREATING and its API is not available"),
        ({"status": "ACTIVE", "endpoint": "https://x", "certificateAuthority": {"data": "***"}}, "is not base64"),
        (
            {"status": "ACTIVE", "endpoint": "https://x", "certificateAuthority": {"data": "aGVsbG8="}},
            "is not a PEM certificate",
        ),
    ],
)
def test_cluster_endpoint_refuses_unusable_clusters(cluster, message):
    with pytest.raises(eks.EksError, match=message):
        eks.cluster_endpoint(FakeEks(cluster), "prod")
