# -*- coding: utf-8 -*-

# Copyright: Contributors to the spotmax.maxgroup project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Kubernetes API connections with kubernetes.core's option names and ``K8S_AUTH_*`` fallbacks.

The options are documented by the ``spotmax.maxgroup.kubernetes`` doc fragment. :func:`auth_settings`
resolves them (option first, then environment); :func:`configuration` turns them into a client
configuration the way kubernetes.core does (host + api_key alone, else a kubeconfig, else in-cluster
then the default kubeconfig); :func:`endpoint_configuration` connects to a known endpoint with a
bearer token, for EKS clusters reached through :mod:`eks`.
"""

from __future__ import annotations

import json
import os
import traceback
from collections.abc import Mapping
from typing import Any

try:
    import kubernetes

    # Re-exported for the modules' ``except`` clauses.
    from kubernetes.client.exceptions import ApiException  # pylint: disable=unused-import
    from urllib3.exceptions import HTTPError as Urllib3Error  # pylint: disable=unused-import
except ImportError:
    HAS_KUBERNETES = False
    KUBERNETES_IMPORT_ERROR: str | None = traceback.format_exc()

    class ApiException(Exception):  # type: ignore[no-redef]  # never raised: the module fails first
        """Stands in for the client's exception so ``except`` clauses import without the library."""

    class Urllib3Error(Exception):  # type: ignore[no-redef]
        """Stands in for urllib3's base exception when the library is missing."""

else:
    HAS_KUBERNETES = True
    KUBERNETES_IMPORT_ERROR = None

# Option -> environment variables read when the option is not set (kubernetes.core's names).
ENV_FALLBACKS: dict[str, tuple[str, ...]] = {
    "kubeconfig": ("K8S_AUTH_KUBECONFIG",),
    "context": ("K8S_AUTH_CONTEXT",),
    "host": ("K8S_AUTH_HOST",),
    "api_key": ("K8S_AUTH_API_KEY",),
    "validate_certs": ("K8S_AUTH_VALIDATE_CERTS", "K8S_AUTH_VERIFY_SSL"),
    "ca_cert": ("K8S_AUTH_CA_CERT", "K8S_AUTH_SSL_CA_CERT"),
}
CONNECTION_OPTIONS = tuple(ENV_FALLBACKS)


def argument_spec() -> dict[str, Any]:
    """The connection options of the ``spotmax.maxgroup.kubernetes`` doc fragment."""
    return dict(
        kubeconfig=dict(type="raw", no_log=True),
        context=dict(type="str"),
        host=dict(type="str"),
        api_key=dict(type="str", no_log=True),
        validate_certs=dict(type="bool", aliases=["verify_ssl"]),
        ca_cert=dict(type="path", aliases=["ssl_ca_cert"]),
    )


def auth_settings(params: Mapping[str, Any], environ: Mapping[str, str]) -> dict[str, Any]:
    """Each connection option from ``params``, else from its ``K8S_AUTH_*`` variable; unset ones left out."""
    settings: dict[str, Any] = {}
    for option, variables in ENV_FALLBACKS.items():
        value = params.get(option)
        if value is None:
            value = next((environ[name] for name in variables if environ.get(name)), None)
            if value is not None and option == "validate_certs":
                value = value.strip().lower() not in ("0", "false", "no", "off")
        if value is not None:
            settings[option] = value
    if isinstance(settings.get("host"), str):
        settings["host"] = settings["host"].rstrip("/")
    return settings


def _load_kubeconfig(settings: Mapping[str, Any], target: Any) -> None:
    kubeconfig, context = settings.get("kubeconfig"), settings.get("context")
    if isinstance(kubeconfig, dict):
        kubernetes.config.load_kube_config_from_dict(
            config_dict=kubeconfig, context=context, client_configuration=target, persist_config=False
        )
    else:
        kubernetes.config.load_kube_config(
            config_file=kubeconfig, context=context, client_configuration=target, persist_config=False
        )


def configuration(settings: Mapping[str, Any]) -> Any:
    """A ``kubernetes.client.Configuration`` from :func:`auth_settings` (raises the library's errors)."""
    target = kubernetes.client.Configuration()
    if settings.get("host") and settings.get("api_key"):
        pass  # enough to connect: no kubeconfig is read
    elif settings.get("kubeconfig") or settings.get("context"):
        _load_kubeconfig(settings, target)
    else:
        try:
            kubernetes.config.load_incluster_config(client_configuration=target)
        except kubernetes.config.ConfigException:
            _load_kubeconfig(settings, target)
    if settings.get("host"):
        target.host = settings["host"]
    if settings.get("api_key"):
        target.api_key = {"authorization": f"Bearer {settings['api_key']}"}
        target.api_key_prefix = {}
    if settings.get("ca_cert"):
        target.ssl_ca_cert = settings["ca_cert"]
    if settings.get("validate_certs") is not None:
        target.verify_ssl = bool(settings["validate_certs"])
    return target


def endpoint_configuration(host: str, token: str, ca_pem: bytes | None, verify: bool, workdir: str) -> Any:
    """A configuration for ``host`` with a bearer token; the CA (PEM) is written into ``workdir``."""
    target = kubernetes.client.Configuration()
    target.host = host.rstrip("/")
    target.api_key = {"authorization": f"Bearer {token}"}
    target.verify_ssl = verify
    if ca_pem is not None:
        path = os.path.join(workdir, "cluster-ca.pem")
        with open(path, "wb") as handle:
            handle.write(ca_pem)
        target.ssl_ca_cert = path
    return target


def core_v1(target: Any) -> Any:
    """A ``CoreV1Api`` on its own ``ApiClient`` for ``target``."""
    return kubernetes.client.CoreV1Api(kubernetes.client.ApiClient(target))


def api_error_message(exc: Any) -> str:
    """``status message`` of an ``ApiException``, the message from its Status body when there is one."""
    message = str(getattr(exc, "reason", "") or "")
    body = getattr(exc, "body", None)
    if body:
        try:
            message = json.loads(body).get("message") or message
        except (TypeError, ValueError, AttributeError):
            message = str(body)
    return f"{getattr(exc, 'status', '?')} {message}".strip()
