# -*- coding: utf-8 -*-

# Copyright: Contributors to the spotmax.maxgroup project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import json

import pytest

from ansible_collections.spotmax.maxgroup.plugins.module_utils import kubernetes as k8s

UNSET = dict.fromkeys(k8s.CONNECTION_OPTIONS)


def kubeconfig(path, contexts):
    """A kubeconfig with one cluster/user per context name: {name: (server, token)}."""
    document = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": n, "cluster": {"server": s}} for n, (s, _t) in contexts.items()],
        "users": [{"name": n, "user": {"token": t}} for n, (_s, t) in contexts.items()],
        "contexts": [{"name": n, "context": {"cluster": n, "user": n}} for n in contexts],
        "current-context": next(iter(contexts)),
    }
    path.write_text(json.dumps(document), encoding="utf-8")
    return str(path)


def bearer(configuration):
    return configuration.auth_settings()["BearerToken"]["value"]


def test_options_win_over_environment_variables():
    environ = {"K8S_AUTH_HOST": "https://env:6443/", "K8S_AUTH_CONTEXT": "env", "K8S_AUTH_API_KEY": "env-token"}
    settings = k8s.auth_settings({**UNSET, "context": "mine"}, environ)
    assert settings == {"context": "mine", "host": "https://env:6443", "api_key": "env-token"}


@pytest.mark.parametrize(("value", "expected"), [("false", False), ("no", False), ("0", False), ("true", True)])
def test_verify_ssl_from_the_environment(value, expected):
    assert k8s.auth_settings(UNSET, {"K8S_AUTH_VERIFY_SSL": value})["validate_certs"] is expected


def test_ca_cert_and_kubeconfig_from_the_environment():
    environ = {"K8S_AUTH_SSL_CA_CERT": "/ca.pem", "K8S_AUTH_KUBECONFIG": "/kubeconfig"}
    assert k8s.auth_settings(UNSET, environ) == {"ca_cert": "/ca.pem", "kubeconfig": "/kubeconfig"}


def test_kubeconfig_file_and_context(tmp_path):
    path = kubeconfig(
        tmp_path / "config", {"a": ("http://127.0.0.1:1", "token-a"), "b": ("http://127.0.0.1:2", "token-b")}
    )
    current = k8s.configuration({"kubeconfig": path})
    assert (current.host, bearer(current)) == ("http://127.0.0.1:1", "Bearer token-a")
    other = k8s.configuration({"kubeconfig": path, "context": "b"})
    assert (other.host, bearer(other)) == ("http://127.0.0.1:2", "Bearer token-b")


def test_kubeconfig_as_a_dictionary_with_overrides(tmp_path):
    path = kubeconfig(tmp_path / "config", {"a": ("http://127.0.0.1:1", "token-a")})
    with open(path, encoding="utf-8") as handle:
        document = json.load(handle)
    configuration = k8s.configuration(
        {"kubeconfig": document, "host": "http://127.0.0.1:3", "ca_cert": "/ca.pem", "validate_certs": False}
    )
    assert configuration.host == "http://127.0.0.1:3"
    assert bearer(configuration) == "Bearer token-a"
    assert configuration.ssl_ca_cert == "/ca.pem"
    assert configuration.verify_ssl is False


def test_host_and_api_key_need_no_kubeconfig(monkeypatch, tmp_path):
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing"))
    configuration = k8s.configuration({"host": "http://127.0.0.1:4", "api_key": "tok"})
    assert (configuration.host, bearer(configuration)) == ("http://127.0.0.1:4", "Bearer tok")


def test_a_missing_kubeconfig_raises(tmp_path):
    with pytest.raises(Exception, match="No configuration found"):
        k8s.configuration({"kubeconfig": str(tmp_path / "missing")})


def test_endpoint_configuration_writes_the_ca(tmp_path):
    configuration = k8s.endpoint_configuration("https://eks.example/", "k8s-aws-v1.abc", b"PEM", True, str(tmp_path))
    assert configuration.host == "https://eks.example"
    assert bearer(configuration) == "Bearer k8s-aws-v1.abc"
    assert configuration.verify_ssl is True
    assert (tmp_path / "cluster-ca.pem").read_bytes() == b"PEM"
    assert configuration.ssl_ca_cert == str(tmp_path / "cluster-ca.pem")


class FakeApiException(Exception):
    def __init__(self, status, reason, body):
        super().__init__(status)
        self.status, self.reason, self.body = status, reason, body


def test_api_error_message_prefers_the_status_message():
    body = json.dumps({"kind": "Status", "message": 'configmaps "aws-auth" is forbidden'})
    assert k8s.api_error_message(FakeApiException(403, "Forbidden", body)) == '403 configmaps "aws-auth" is forbidden'
    assert k8s.api_error_message(FakeApiException(502, "Bad Gateway", None)) == "502 Bad Gateway"
