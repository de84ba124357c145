"""The spotmax.maxgroup local world: test doubles for AWS, a Kubernetes API server and Consul.

Everything here listens on 127.0.0.1 only. It is test support and is excluded from the built
collection (see ``build_ignore`` in ``galaxy.yml``).
"""
