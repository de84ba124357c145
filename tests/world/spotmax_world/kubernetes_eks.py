"""EKS bearer tokens, checked as the cluster's authenticator (aws-iam-authenticator) checks them.

A token is ``k8s-aws-v1.`` + unpadded base64url of a presigned STS ``GetCallerIdentity`` URL whose
signature also covers the header ``x-k8s-aws-id: <cluster name>``. The header's value is not in the
URL: the real authenticator sends the URL to STS with its own cluster name in that header, and STS
rejects a signature made for another cluster. Without a real STS, :func:`verify` recomputes the
Signature Version 4 signature with the secret key of the credential the URL names, once per
registered cluster name.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

TOKEN_PREFIX = "k8s-aws-v1."
CLUSTER_ID_HEADER = "x-k8s-aws-id"
SIGNED_HEADERS = f"host;{CLUSTER_ID_HEADER}"
MAX_EXPIRES_SECONDS = 15 * 60  # the longest the EKS authenticator honours
CLOCK_SKEW_SECONDS = 5 * 60
_EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


class TokenError(ValueError):
    """Why a token is refused (the API answers a bare 401, as the real one does)."""


def _decode(token: str) -> str:
    if not token.startswith(TOKEN_PREFIX):
        raise TokenError(f"the token does not start with {TOKEN_PREFIX}")
    encoded = token[len(TOKEN_PREFIX) :]
    try:
        return base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise TokenError(f"the token is not base64url: {exc}") from exc


def _hmac(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode(), hashlib.sha256).digest()


def _signature(secret: str, url: str, cluster: str, credential: list[str], amz_date: str) -> str:
    """SigV4 of a presigned GET (query auth) that signs ``host`` and ``x-k8s-aws-id``."""
    parts = urlsplit(url)
    default_port = {"http": 80, "https": 443}.get(parts.scheme)
    host = parts.hostname or ""
    if parts.port is not None and parts.port != default_port:
        host = f"{host}:{parts.port}"
    # The canonical query string: the URL's (already encoded) pairs, sorted, without the signature.
    pairs = [pair.partition("=") for pair in parts.query.split("&")]
    query = "&".join(f"{key}={value}" for key, _eq, value in sorted(pairs) if key != "X-Amz-Signature")
    canonical = "\n".join(
        [
            "GET",
            parts.path or "/",
            query,
            f"host:{host}\n{CLUSTER_ID_HEADER}:{cluster}\n",
            SIGNED_HEADERS,
            _EMPTY_SHA256,
        ]
    )
    scope = "/".join(credential[1:])
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    key = f"AWS4{secret}".encode()
    for part in credential[1:]:
        key = _hmac(key, part)
    return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


def verify(token: str, clusters: Iterable[str], secrets: Mapping[str, str], now: float) -> str:
    """The registered cluster ``token`` was made for; :class:`TokenError` when it is not acceptable.

    ``secrets`` maps access key ids to secret keys; ``now`` is a Unix time.
    """
    url = _decode(token)
    params = {key: values[-1] for key, values in parse_qs(urlsplit(url).query, keep_blank_values=True).items()}
    if params.get("Action") != "GetCallerIdentity":
        raise TokenError(f"the URL is not an STS GetCallerIdentity request: Action={params.get('Action')!r}")
    if params.get("X-Amz-Algorithm") != "AWS4-HMAC-SHA256":
        raise TokenError("the URL is not presigned with AWS4-HMAC-SHA256")
    if params.get("X-Amz-SignedHeaders") != SIGNED_HEADERS:
        raise TokenError(f"the URL must sign exactly {SIGNED_HEADERS!r}, not {params.get('X-Amz-SignedHeaders')!r}")
    credential = (params.get("X-Amz-Credential") or "").split("/")
    if len(credential) != 5 or credential[3] != "sts" or credential[4] != "aws4_request":
        raise TokenError(f"the URL is not signed for STS: X-Amz-Credential={params.get('X-Amz-Credential')!r}")
    amz_date = params.get("X-Amz-Date") or ""
    try:
        issued = datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC).timestamp()
        expires = int(params.get("X-Amz-Expires") or "")
    except ValueError as exc:
        raise TokenError(f"X-Amz-Date or X-Amz-Expires is malformed: {exc}") from exc
    if not 0 < expires <= MAX_EXPIRES_SECONDS:
        raise TokenError(f"X-Amz-Expires={expires} is not between 1 and {MAX_EXPIRES_SECONDS}")
    if now > issued + expires:
        raise TokenError(f"the token expired {now - issued - expires:.0f} s ago")
    if issued > now + CLOCK_SKEW_SECONDS:
        raise TokenError("X-Amz-Date is in the future")
    secret = secrets.get(credential[0])
    if secret is None:
        raise TokenError(f"unknown access key {credential[0]!r}")
    signature = params.get("X-Amz-Signature") or ""
    for cluster in clusters:
        expected = _signature(secret, url, cluster, credential, amz_date)
        if hmac.compare_digest(expected, signature):
            return cluster
    raise TokenError("the signature does not match any registered cluster (wrong cluster or secret)")
