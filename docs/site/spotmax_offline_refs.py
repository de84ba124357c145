# Copyright: Contributors to the spotmax.maxgroup project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Sphinx extension for the offline docs site build (``make docs``).

The ``conf.py`` that ``antsibull-docs sphinx-init`` generates resolves references to other
collections and to the Ansible docsite through intersphinx inventories downloaded from
docs.ansible.com; this build has no network. This extension empties ``intersphinx_mapping`` (no
download is tried) and turns exactly those references into plain links to their public pages:

- ``ansible_collections.<namespace>.<name>.<plugin>_<type>[__parameter-<option>|__return-<value>]``
  of any collection but this one;
- the few Ansible docsite labels the generated plugin pages use (``common_return_values``, ...).

Every other unresolved reference, among them any reference into this collection, stays a Sphinx
warning, which ``-W`` turns into a failed build.
"""

from __future__ import annotations

import re
from typing import Any

from docutils import nodes

THIS_COLLECTION = "spotmax.maxgroup"
DOCSITE = "https://docs.ansible.com/projects/ansible/latest/"
DOCSITE_LABELS = {
    "common_return_values": "reference_appendices/common_return_values.html",
    "ansible_configuration_settings": "reference_appendices/config.html",
    "list_of_collections": "collections/index.html",
}
PLUGIN_LABEL = re.compile(
    r"^ansible_collections\.(?P<namespace>[a-z0-9_]+)\.(?P<name>[a-z0-9_]+)\."
    r"(?P<page>[a-z0-9_]+_[a-z]+)(?:__(?P<anchor>(?:parameter|return)-[A-Za-z0-9_/.-]+))?$"
)


def external_url(target: str) -> str | None:
    """The public URL of a reference this offline build cannot resolve, or None to leave it unresolved."""
    if target in DOCSITE_LABELS:
        return DOCSITE + DOCSITE_LABELS[target]
    found = PLUGIN_LABEL.match(target)
    if found is None or f"{found['namespace']}.{found['name']}" == THIS_COLLECTION:
        return None
    url = f"{DOCSITE}collections/{found['namespace']}/{found['name']}/{found['page']}.html"
    return f"{url}#{found['anchor']}" if found["anchor"] else url


def resolve(app: Any, env: Any, node: Any, contnode: Any) -> Any:
    if node.get("refdomain") != "std" or node.get("reftype") != "ref":
        return None
    url = external_url(node.get("reftarget", ""))
    if url is None:
        return None
    reference = nodes.reference("", "", internal=False, refuri=url)
    text = node.astext() or node["reftarget"]
    reference += contnode if contnode is not None else nodes.Text(text)
    return reference


def offline(app: Any, config: Any) -> None:
    config.intersphinx_mapping = {}


def setup(app: Any) -> dict[str, Any]:
    # Before sphinx.ext.intersphinx reads the mapping (its own config-inited handler, priority 800).
    app.connect("config-inited", offline, priority=100)
    app.connect("missing-reference", resolve)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
