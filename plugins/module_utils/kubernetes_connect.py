# -*- coding: utf-8 -*-

# Copyright: Contributors to the spotmax.maxgroup project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The Kubernetes connection of modules that reach a cluster by kubeconfig or by EKS name.

Such a module documents its options with the ``spotmax.maxgroup.kubernetes.eks`` and
``spotmax.maxgroup.kubernetes`` doc fragments, builds its argument spec with :func:`argument_spec`,
passes :data:`MUTUALLY_EXCLUSIVE` to ``AnsibleAWSModule`` and calls :func:`connect`, which fails the
module (naming the option) when no client can be built.
"""

from __future__ import annotations

import os
import traceback
from typing import Any

try:
    import botocore
except ImportError:
    pass  # AnsibleAWSModule reports the missing library

from ansible_collections.amazon.aws.plugins.module_utils.botocore import is_boto3_error_code
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry

from ansible_collections.spotmax.maxgroup.plugins.module_utils import eks
from ansible_collections.spotmax.maxgroup.plugins.module_utils import kubernetes as k8s

MUTUALLY_EXCLUSIVE: list[tuple[str, str]] = [
    ("eks_cluster_name", option) for option in ("kubeconfig", "context", "host", "api_key", "ca_cert")
]


def argument_spec() -> dict[str, Any]:
    """``eks_cluster_name``, the kubernetes.core connection options and the shared ``validate_certs``."""
    spec = dict(eks_cluster_name=dict(type="str"), **k8s.argument_spec())
    # Shared with the AWS options, which default it to true.
    spec["validate_certs"] = dict(type="bool", default=True, aliases=["verify_ssl"])
    return spec


def _eks_configuration(module: Any, name: str) -> tuple[Any, str]:
    client = module.client("eks", retry_decorator=AWSRetry.jittered_backoff())
    try:
        cluster = eks.cluster_endpoint(client, name)
    except is_boto3_error_code("ResourceNotFoundException") as exc:
        module.fail_json_aws(exc, msg=f"eks_cluster_name: no EKS cluster named {name!r} in {module.region}")
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:  # pylint: disable=duplicate-except
        module.fail_json_aws(exc, msg=f"Failed to describe EKS cluster {name!r}")
    except eks.EksError as exc:
        module.fail_json(msg=str(exc))
    try:
        token = eks.eks_token(module.client("sts"), name)
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
        module.fail_json_aws(exc, msg=f"Failed to sign an EKS token for cluster {name!r}")
    configuration = k8s.endpoint_configuration(
        cluster.endpoint, token, cluster.ca_pem, module.params["validate_certs"], module.tmpdir
    )
    return configuration, f"EKS cluster {name!r} ({cluster.endpoint})"


def configuration(module: Any) -> tuple[Any, str]:
    """A client configuration and a description of where it points (for messages)."""
    params = module.params
    if params["eks_cluster_name"]:
        return _eks_configuration(module, params["eks_cluster_name"])
    # validate_certs is shared with the AWS options and defaults to true: only false overrides the kubeconfig.
    options = {option: params[option] for option in k8s.CONNECTION_OPTIONS}
    options["validate_certs"] = None if params["validate_certs"] else False
    settings = k8s.auth_settings(options, os.environ)
    try:
        target = k8s.configuration(settings)
    except Exception as exc:  # pylint: disable=broad-exception-caught  # the library raises several kinds
        module.fail_json(
            msg=f"kubeconfig: cannot load a Kubernetes configuration: {exc}", exception=traceback.format_exc()
        )
    return target, f"Kubernetes API {target.host}"


def connect(module: Any) -> tuple[Any, str]:
    """A CoreV1Api for the cluster: through EKS with O(eks_cluster_name), else kubeconfig-style options."""
    target, where = configuration(module)
    return k8s.core_v1(target), where
