# -*- coding: utf-8 -*-

# Copyright: Contributors to the spotmax.maxgroup project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    """Kubernetes API connection options (kubernetes.core's names and environment variables).

    ``EKS`` (``spotmax.maxgroup.kubernetes.eks``) adds O(eks_cluster_name) and the O(validate_certs) shared
    with the AWS options. List it B(first) in ``extends_documentation_fragment``: where fragments define the
    same option, the first one listed wins, and its O(validate_certs) must win over those of
    ``amazon.aws.common.modules`` and of this default fragment.
    """

    DOCUMENTATION = r"""
options:
  kubeconfig:
    description:
      - Path to a kubeconfig file, or the kubeconfig as a dictionary. Several paths may be joined with
        V(:) (V(;) on Windows), as in E(KUBECONFIG).
      - Can also be set with the E(K8S_AUTH_KUBECONFIG) environment variable.
      - Without this, O(context), O(host) and O(api_key), the module tries the in-cluster service account,
        then the default kubeconfig (E(KUBECONFIG) or C(~/.kube/config)).
    type: raw
  context:
    description:
      - The kubeconfig context to use instead of its current context.
      - Can also be set with the E(K8S_AUTH_CONTEXT) environment variable.
    type: str
  host:
    description:
      - URL of the Kubernetes API server; overrides the kubeconfig's.
      - With O(api_key), no kubeconfig is read.
      - Can also be set with the E(K8S_AUTH_HOST) environment variable.
    type: str
  api_key:
    description:
      - Bearer token to authenticate with; overrides the kubeconfig's credentials.
      - Can also be set with the E(K8S_AUTH_API_KEY) environment variable.
    type: str
  validate_certs:
    description:
      - Whether to verify the API server's TLS certificate. Unset, the kubeconfig decides (verify by default).
      - Can also be set with the E(K8S_AUTH_VERIFY_SSL) environment variable.
    type: bool
    aliases: [verify_ssl]
  ca_cert:
    description:
      - Path to the CA certificate (full chain) that signed the API server's certificate; overrides the kubeconfig's.
      - Can also be set with the E(K8S_AUTH_SSL_CA_CERT) environment variable.
    type: path
    aliases: [ssl_ca_cert]
requirements:
  - kubernetes >= 24.2.0, != 36.0.0 (Python library)
"""

    EKS = r"""
options:
  eks_cluster_name:
    description:
      - Name of the EKS cluster to reach with the AWS options (region, credentials, endpoint) instead of a kubeconfig.
      - The module reads the API endpoint and CA with C(eks:DescribeCluster) and signs its own bearer token
        (a presigned C(sts:GetCallerIdentity) request), so the caller's IAM identity must be mapped in aws-auth
        (or be the cluster's creator) already.
      - Mutually exclusive with O(kubeconfig), O(context), O(host), O(api_key) and O(ca_cert); the C(K8S_AUTH_*)
        and E(KUBECONFIG) environment variables are not read then.
    type: str
  validate_certs:
    description:
      - When V(false), TLS certificates are verified neither for the AWS APIs nor for the Kubernetes API.
      - When V(true), AWS certificates are verified; the Kubernetes API's certificate is verified against the
        cluster's CA with O(eks_cluster_name), else as the kubeconfig, O(ca_cert) and E(K8S_AUTH_VERIFY_SSL) say.
    type: bool
    default: true
    aliases: [verify_ssl]
notes:
  - The AWS options are only used with O(eks_cluster_name).
"""
