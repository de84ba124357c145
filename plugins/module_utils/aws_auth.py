# -*- coding: utf-8 -*-

# Copyright: Contributors to the spotmax.maxgroup project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The ``kube-system/aws-auth`` ConfigMap of an EKS cluster, as pure functions over plain data.

The ConfigMap holds three YAML documents in its ``data``: ``mapRoles`` (entries with ``rolearn``,
``username``, ``groups``), ``mapUsers`` (``userarn``, ``username``, ``groups``) and ``mapAccounts``
(account ids). :func:`parse` reads them, :func:`plan` merges a request into them (entries are
matched by ARN, groups compared as sets), :func:`node_access_losses` finds the changes that would
take nodes out of the cluster and :func:`render` writes back only the keys that changed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

try:
    import yaml
except ImportError:
    HAS_YAML = False
else:
    HAS_YAML = True

NAMESPACE = "kube-system"
NAME = "aws-auth"
CONFIGMAP = f"{NAMESPACE}/{NAME}"
NODES_GROUP = "system:nodes"
# Placeholders aws-iam-authenticator fills into a mapped username.
USERNAME_PLACEHOLDERS = (
    "AccessKeyID",
    "AccountID",
    "EC2InstanceID",
    "EC2PrivateDNSName",
    "SessionName",
    "SessionNameRaw",
)
_IAM_NAME = r"[A-Za-z0-9_+=,.@-]{1,128}"
ARN = re.compile(
    r"^arn:(?P<partition>aws(?:-[a-z]+)*):iam::(?P<account>[0-9]{12}):(?P<kind>role|user)/"
    rf"(?P<path>(?:{_IAM_NAME}/)*)(?P<name>{_IAM_NAME})$"
)
ACCOUNT = re.compile(r"^[0-9]{12}$")
_PLACEHOLDER = re.compile(r"\{\{([^{}]*)\}\}")
_NO_SPACE = re.compile(r"^\S+$")

Entry = dict[str, Any]


class AwsAuthError(ValueError):
    """Bad input, or an aws-auth ConfigMap this module must not touch; the message names the field."""


@dataclass(frozen=True)
class Section:
    """One list of IAM mappings: its option name, ConfigMap key, ARN key and IAM kind."""

    option: str
    key: str
    arn_key: str
    kind: str


ROLES = Section("map_roles", "mapRoles", "rolearn", "role")
USERS = Section("map_users", "mapUsers", "userarn", "user")
SECTIONS = (ROLES, USERS)
ACCOUNTS_OPTION, ACCOUNTS_KEY = "map_accounts", "mapAccounts"


@dataclass
class AwsAuth:
    """The three mappings of an aws-auth ConfigMap (an absent ConfigMap has empty lists)."""

    map_roles: list[Entry] = field(default_factory=list)
    map_users: list[Entry] = field(default_factory=list)
    map_accounts: list[str] = field(default_factory=list)

    def entries(self, section: Section) -> list[Entry]:
        return self.map_roles if section is ROLES else self.map_users


@dataclass
class Request:
    """Validated module input: wanted entries per section (None: option not given)."""

    state: str
    purge: bool
    map_roles: list[Entry] | None
    map_users: list[Entry] | None
    map_accounts: list[str] | None

    def entries(self, section: Section) -> list[Entry] | None:
        return self.map_roles if section is ROLES else self.map_users


@dataclass(frozen=True)
class NodeAccessLoss:
    """A mapping carrying ``system:nodes`` that a plan removes or strips of that group."""

    field: str
    arn: str
    reason: str


# -- input validation ----------------------------------------------------------------------------
def _check_arn(where: str, arn: Any, section: Section) -> str:
    example = f"arn:aws:iam::111122223333:{section.kind}/NAME"
    found = ARN.match(arn) if isinstance(arn, str) else None
    if found is None or found.group("kind") != section.kind:
        raise AwsAuthError(f"{where}: {arn!r} is not allowed; use an IAM {section.kind} ARN such as {example}")
    if section is ROLES and found.group("path"):
        plain = f"arn:{found.group('partition')}:iam::{found.group('account')}:role/{found.group('name')}"
        raise AwsAuthError(
            f"{where}: {arn!r} is not allowed; aws-auth matches role ARNs without their path, use {plain!r}"
        )
    return str(arn)


def _check_username(where: str, username: Any) -> str:
    allowed = ", ".join("{{" + name + "}}" for name in USERNAME_PLACEHOLDERS)
    hint = f"use a Kubernetes user name without whitespace, optionally with the placeholders {allowed}"
    if not isinstance(username, str) or not _NO_SPACE.match(username):
        raise AwsAuthError(f"{where}: {username!r} is not allowed; {hint}")
    unknown = [name for name in _PLACEHOLDER.findall(username) if name not in USERNAME_PLACEHOLDERS]
    if unknown or "{" in _PLACEHOLDER.sub("", username) or "}" in _PLACEHOLDER.sub("", username):
        raise AwsAuthError(f"{where}: {username!r} is not allowed; {hint}")
    return username


def _check_groups(where: str, groups: Any) -> list[str]:
    if groups is None:
        return []
    if not isinstance(groups, list):
        raise AwsAuthError(f"{where}: {groups!r} is not allowed; use a list of Kubernetes group names")
    unique: list[str] = []
    for index, group in enumerate(groups):
        if not isinstance(group, str) or not _NO_SPACE.match(group) or "{{" in group:
            raise AwsAuthError(
                f"{where}[{index}]: {group!r} is not allowed; use a Kubernetes group name without whitespace "
                "or placeholders, for example system:nodes or spotmax:node-drainers"
            )
        if group not in unique:
            unique.append(group)
    return unique


def _wanted_entries(section: Section, items: Sequence[Mapping[str, Any]] | None, state: str) -> list[Entry] | None:
    if items is None:
        return None
    wanted: list[Entry] = []
    seen: dict[str, int] = {}
    for index, item in enumerate(items):
        where = f"{section.option}[{index}]"
        arn = _check_arn(f"{where}.{section.arn_key}", item.get(section.arn_key), section)
        if arn in seen:
            raise AwsAuthError(
                f"{where}.{section.arn_key}: {arn!r} is not allowed; it is already listed as "
                f"{section.option}[{seen[arn]}], list each ARN once"
            )
        seen[arn] = index
        if state == "absent":
            wanted.append({section.arn_key: arn})
            continue
        if item.get("username") is None:
            raise AwsAuthError(f"{where}.username: None is not allowed; state=present needs a username for {arn}")
        username = _check_username(f"{where}.username", item.get("username"))
        groups = _check_groups(f"{where}.groups", item.get("groups"))
        wanted.append({section.arn_key: arn, "username": username, "groups": groups})
    return wanted


def _wanted_accounts(accounts: Sequence[Any] | None) -> list[str] | None:
    if accounts is None:
        return None
    wanted: list[str] = []
    for index, account in enumerate(accounts):
        text = str(account)
        if not ACCOUNT.match(text):
            raise AwsAuthError(
                f"{ACCOUNTS_OPTION}[{index}]: {account!r} is not allowed; use a 12-digit AWS account id "
                "(quoted, so YAML keeps leading zeros), such as '111122223333'"
            )
        if text not in wanted:
            wanted.append(text)
    return wanted


def validate_request(
    state: str,
    purge: bool,
    map_roles: Sequence[Mapping[str, Any]] | None = None,
    map_users: Sequence[Mapping[str, Any]] | None = None,
    map_accounts: Sequence[Any] | None = None,
) -> Request:
    """Check the module's input and normalise it; raise :class:`AwsAuthError` naming the bad field."""
    if state not in ("present", "absent"):
        raise AwsAuthError(f"state: {state!r} is not allowed; use present or absent")
    if map_roles is None and map_users is None and map_accounts is None:
        raise AwsAuthError("map_roles, map_users, map_accounts: none given; list the mappings to add, update or remove")
    if purge and state == "absent":
        raise AwsAuthError(
            "purge: true is not allowed with state=absent; state=absent removes the listed entries, "
            "purge=true with state=present keeps only the listed ones"
        )
    return Request(
        state=state,
        purge=purge,
        map_roles=_wanted_entries(ROLES, map_roles, state),
        map_users=_wanted_entries(USERS, map_users, state),
        map_accounts=_wanted_accounts(map_accounts),
    )


# -- reading the ConfigMap -------------------------------------------------------------------------
def _load(data: Mapping[str, Any], key: str) -> Any:
    text = data.get(key)
    if text is None or (isinstance(text, str) and not text.strip()):
        return []
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        reason = " ".join(str(exc).split())
        raise AwsAuthError(
            f"{CONFIGMAP}: data.{key} is not valid YAML ({reason}); fix the ConfigMap by hand "
            "(kubectl edit -n kube-system configmap aws-auth), this module does not overwrite what it cannot read"
        ) from exc


def _shape_error(key: str, problem: str) -> AwsAuthError:
    return AwsAuthError(
        f"{CONFIGMAP}: data.{key} {problem}; fix the ConfigMap by hand "
        "(kubectl edit -n kube-system configmap aws-auth), this module does not overwrite what it cannot read"
    )


def _parse_section(data: Mapping[str, Any], section: Section) -> list[Entry]:
    loaded = _load(data, section.key)
    if loaded is None:
        return []
    if not isinstance(loaded, list):
        raise _shape_error(section.key, f"is a {type(loaded).__name__}, not a list of mappings")
    for index, entry in enumerate(loaded):
        if not isinstance(entry, dict):
            raise _shape_error(section.key, f"entry {index} is a {type(entry).__name__}, not a mapping")
        if not isinstance(entry.get(section.arn_key), str):
            raise _shape_error(section.key, f"entry {index} has no {section.arn_key} string")
        groups = entry.get("groups")
        if groups is not None and not (isinstance(groups, list) and all(isinstance(g, str) for g in groups)):
            raise _shape_error(
                section.key, f"entry {index} ({entry[section.arn_key]}): groups is not a list of strings"
            )
    return loaded


def parse(data: Mapping[str, Any] | None) -> AwsAuth:
    """The mappings in a ConfigMap's ``data`` (None for a missing ConfigMap)."""
    data = data or {}
    accounts = _load(data, ACCOUNTS_KEY)
    if accounts is None:
        accounts = []
    if not isinstance(accounts, list) or not all(isinstance(a, (str, int)) for a in accounts):
        raise _shape_error(ACCOUNTS_KEY, "is not a list of account ids")
    return AwsAuth(
        map_roles=_parse_section(data, ROLES),
        map_users=_parse_section(data, USERS),
        map_accounts=[str(a) for a in accounts],
    )


# -- merging -------------------------------------------------------------------------------------
def _same(entry: Entry, wanted: Entry) -> bool:
    return entry.get("username") == wanted["username"] and set(entry.get("groups") or []) == set(wanted["groups"])


def _merge_section(current: list[Entry], wanted: list[Entry] | None, section: Section, request: Request) -> list[Entry]:
    if wanted is None:
        return list(current)
    by_arn = {entry[section.arn_key]: entry for entry in wanted}
    if request.state == "absent":
        return [entry for entry in current if entry[section.arn_key] not in by_arn]
    merged: list[Entry] = []
    placed: set[str] = set()
    for entry in current:
        arn = entry[section.arn_key]
        if arn not in by_arn:
            if not request.purge:
                merged.append(entry)
            continue
        if arn in placed:
            continue  # a duplicate of an ARN already merged: aws-auth keeps one entry per ARN
        placed.add(arn)
        target = by_arn[arn]
        if _same(entry, target):
            merged.append(entry)
        else:
            rest = {k: v for k, v in entry.items() if k not in (section.arn_key, "username", "groups")}
            merged.append({**target, **rest})
    merged.extend(entry for arn, entry in by_arn.items() if arn not in placed)
    return merged


def _merge_accounts(current: list[str], wanted: list[str] | None, request: Request) -> list[str]:
    if wanted is None:
        return list(current)
    if request.state == "absent":
        return [account for account in current if account not in wanted]
    kept = [account for account in current if account in wanted or not request.purge]
    return kept + [account for account in wanted if account not in kept]


def plan(current: AwsAuth, request: Request) -> AwsAuth:
    """The mappings after applying ``request`` to ``current`` (unchanged entries are the same objects)."""
    return AwsAuth(
        map_roles=_merge_section(current.map_roles, request.map_roles, ROLES, request),
        map_users=_merge_section(current.map_users, request.map_users, USERS, request),
        map_accounts=_merge_accounts(current.map_accounts, request.map_accounts, request),
    )


def _carries_nodes(entries: list[Entry], section: Section) -> dict[str, bool]:
    """ARN -> whether any entry for it has the ``system:nodes`` group."""
    result: dict[str, bool] = {}
    for entry in entries:
        arn = entry[section.arn_key]
        result[arn] = result.get(arn, False) or NODES_GROUP in (entry.get("groups") or [])
    return result


def node_access_losses(current: AwsAuth, after: AwsAuth, request: Request) -> list[NodeAccessLoss]:
    """Every mapping with ``system:nodes`` that ``after`` drops, and which option causes it."""
    losses: list[NodeAccessLoss] = []
    for section in SECTIONS:
        before_nodes = _carries_nodes(current.entries(section), section)
        after_nodes = _carries_nodes(after.entries(section), section)
        wanted = request.entries(section) or []
        index = {entry[section.arn_key]: position for position, entry in enumerate(wanted)}
        for arn, had_nodes in before_nodes.items():
            if not had_nodes or after_nodes.get(arn):
                continue
            if arn not in after_nodes:
                if request.state == "absent":
                    where, why = f"{section.option}[{index[arn]}].{section.arn_key}", "state=absent removes it"
                else:
                    where, why = "purge", f"purge=true removes it (it is not listed in {section.option})"
            else:
                where, why = f"{section.option}[{index[arn]}].groups", f"the new groups drop {NODES_GROUP}"
            losses.append(NodeAccessLoss(where, arn, why))
    return losses


def node_access_message(losses: Sequence[NodeAccessLoss]) -> str:
    """The refusal for :func:`node_access_losses` (empty list: no refusal)."""
    details = "; ".join(f"{loss.field}: {loss.arn} carries {NODES_GROUP} and {loss.reason}" for loss in losses)
    return (
        f"{details}. Without that mapping every node using the {'ARN' if len(losses) == 1 else 'ARNs'} "
        "can no longer join or stay in the cluster; set allow_node_role_removal: true to do it anyway"
    )


# -- writing -------------------------------------------------------------------------------------
def _ordered(entry: Entry, section: Section) -> Entry:
    keys = [section.arn_key, "username", "groups"]
    ordered = {key: entry[key] for key in keys if key in entry}
    ordered.update((key, value) for key, value in entry.items() if key not in keys)
    return ordered


def _dump(value: Any) -> str:
    return str(yaml.safe_dump(value, default_flow_style=False, sort_keys=False))


def render(data: Mapping[str, Any] | None, current: AwsAuth, after: AwsAuth) -> dict[str, Any]:
    """The ConfigMap ``data`` for ``after``: other keys and unchanged sections are kept verbatim.

    A section that ends up empty is removed from the ConfigMap.
    """
    result = dict(data or {})
    changes: list[tuple[str, list[Any], list[Any]]] = [
        (ROLES.key, current.map_roles, [_ordered(e, ROLES) for e in after.map_roles]),
        (USERS.key, current.map_users, [_ordered(e, USERS) for e in after.map_users]),
        (ACCOUNTS_KEY, current.map_accounts, list(after.map_accounts)),
    ]
    for key, before_entries, after_entries in changes:
        if before_entries == after_entries:
            continue
        if after_entries:
            result[key] = _dump(after_entries)
        else:
            result.pop(key, None)
    return result


def describe(auth: AwsAuth | None) -> dict[str, Any]:
    """The module's ``aws_auth`` return value; empty for a ConfigMap that does not exist."""
    if auth is None:
        return {}
    return {
        "map_roles": [_describe_entry(e, ROLES) for e in auth.map_roles],
        "map_users": [_describe_entry(e, USERS) for e in auth.map_users],
        "map_accounts": list(auth.map_accounts),
    }


def _describe_entry(entry: Entry, section: Section) -> Entry:
    described = _ordered(entry, section)
    described["groups"] = list(entry.get("groups") or [])
    return described
