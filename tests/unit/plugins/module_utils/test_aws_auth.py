# -*- coding: utf-8 -*-

# Copyright: Contributors to the spotmax.maxgroup project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import re

import pytest
import yaml

from ansible_collections.spotmax.maxgroup.plugins.module_utils import aws_auth as aa

NODE_ROLE = "arn:aws:iam::111122223333:role/nodes"
CONTROLLER_ROLE = "arn:aws:iam::111122223333:role/controller"
OTHER_ROLE = "arn:aws:iam::111122223333:role/other"
OPS_USER = "arn:aws:iam::111122223333:user/ops"
NODE = {
    "rolearn": NODE_ROLE,
    "username": "system:node:{{EC2PrivateDNSName}}",
    "groups": ["system:bootstrappers", "system:nodes"],
}
CONTROLLER = {"rolearn": CONTROLLER_ROLE, "username": "controller", "groups": ["drainers"]}
SEED_DATA = {
    "mapRoles": yaml.safe_dump([NODE, CONTROLLER], sort_keys=False),
    "mapAccounts": "- '111122223333'\n",
    "unrelated": "kept as is",
}


def request(state="present", purge=False, **options):
    return aa.validate_request(
        state, purge, options.get("map_roles"), options.get("map_users"), options.get("map_accounts")
    )


def apply(data, req):
    """parse -> plan -> render, as the module does; returns (before, after, new data)."""
    before = aa.parse(data)
    after = aa.plan(before, req)
    return before, after, aa.render(data, before, after)


# -- merging ---------------------------------------------------------------------------------------
def test_present_adds_to_a_missing_configmap():
    before, after, data = apply(None, request(map_roles=[NODE], map_accounts=["111122223333"]))
    assert before == aa.AwsAuth()
    assert yaml.safe_load(data["mapRoles"]) == [NODE]
    assert yaml.safe_load(data["mapAccounts"]) == ["111122223333"]
    assert "mapUsers" not in data
    assert aa.describe(after)["map_roles"] == [NODE]


def test_matching_is_by_arn_and_groups_compare_as_sets():
    reordered = {**NODE, "groups": ["system:nodes", "system:bootstrappers", "system:nodes"]}
    before, after, data = apply(SEED_DATA, request(map_roles=[reordered, CONTROLLER]))
    assert after == before
    assert data == SEED_DATA  # nothing re-rendered


def test_update_changes_only_the_listed_entry_and_keeps_other_keys():
    wider = {**CONTROLLER, "groups": ["drainers", "viewers"]}
    before, after, data = apply(SEED_DATA, request(map_roles=[wider]))
    assert after.map_roles == [NODE, wider]
    assert after.map_roles[0] is before.map_roles[0]
    assert yaml.safe_load(data["mapRoles"]) == [NODE, wider]
    assert data["mapAccounts"] == SEED_DATA["mapAccounts"]
    assert data["unrelated"] == "kept as is"


def test_update_keeps_unknown_keys_of_an_entry():
    data = {"mapRoles": yaml.safe_dump([{**CONTROLLER, "note": "by hand"}])}
    _before, after, _data = apply(data, request(map_roles=[{**CONTROLLER, "username": "ctl"}]))
    assert after.map_roles == [{**CONTROLLER, "username": "ctl", "note": "by hand"}]


def test_duplicate_arns_in_the_configmap_collapse_into_one():
    data = {"mapRoles": yaml.safe_dump([CONTROLLER, {**CONTROLLER, "username": "old"}])}
    _before, after, _data = apply(data, request(map_roles=[CONTROLLER]))
    assert after.map_roles == [CONTROLLER]


def test_absent_removes_listed_arns_and_accounts_only():
    _before, after, data = apply(
        SEED_DATA, request("absent", map_roles=[{"rolearn": CONTROLLER_ROLE}], map_accounts=["111122223333"])
    )
    assert after.map_roles == [NODE]
    assert after.map_accounts == []
    assert "mapAccounts" not in data  # an emptied section is removed
    assert data["unrelated"] == "kept as is"


def test_absent_of_unknown_entries_changes_nothing():
    before, after, _data = apply(SEED_DATA, request("absent", map_users=[{"userarn": OPS_USER}]))
    assert after == before


def test_purge_only_touches_the_options_given():
    data = {**SEED_DATA, "mapUsers": yaml.safe_dump([{"userarn": OPS_USER, "username": "ops", "groups": []}])}
    _before, after, _data = apply(data, request(purge=True, map_roles=[NODE], map_accounts=["444455556666"]))
    assert after.map_roles == [NODE]
    assert after.map_accounts == ["444455556666"]
    assert [u["userarn"] for u in after.map_users] == [OPS_USER]


def test_without_purge_other_entries_stay():
    _before, after, _data = apply(SEED_DATA, request(map_roles=[{"rolearn": OTHER_ROLE, "username": "other"}]))
    assert [r["rolearn"] for r in after.map_roles] == [NODE_ROLE, CONTROLLER_ROLE, OTHER_ROLE]
    assert after.map_roles[2]["groups"] == []


def test_account_ids_written_as_ints_by_hand_are_read_as_strings():
    assert aa.parse({"mapAccounts": "- 111122223333\n"}).map_accounts == ["111122223333"]


# -- the system:nodes guard --------------------------------------------------------------------------
def losses_of(data, req):
    before = aa.parse(data)
    return aa.node_access_losses(before, aa.plan(before, req), req)


def test_absent_of_the_node_role_is_a_loss_naming_the_field():
    losses = losses_of(SEED_DATA, request("absent", map_roles=[{"rolearn": CONTROLLER_ROLE}, {"rolearn": NODE_ROLE}]))
    assert losses == [aa.NodeAccessLoss("map_roles[1].rolearn", NODE_ROLE, "state=absent removes it")]
    message = aa.node_access_message(losses)
    assert message.startswith(f"map_roles[1].rolearn: {NODE_ROLE} carries system:nodes and state=absent removes it.")
    assert "allow_node_role_removal: true" in message


def test_purge_dropping_the_node_role_is_a_loss():
    losses = losses_of(SEED_DATA, request(purge=True, map_roles=[CONTROLLER]))
    assert [(loss.field, loss.arn) for loss in losses] == [("purge", NODE_ROLE)]


def test_dropping_system_nodes_from_the_groups_is_a_loss():
    losses = losses_of(SEED_DATA, request(map_roles=[{**NODE, "groups": ["system:bootstrappers"]}]))
    assert [(loss.field, loss.reason) for loss in losses] == [
        ("map_roles[0].groups", "the new groups drop system:nodes")
    ]


def test_node_users_are_guarded_too():
    data = {"mapUsers": yaml.safe_dump([{"userarn": OPS_USER, "username": "n", "groups": ["system:nodes"]}])}
    assert [loss.field for loss in losses_of(data, request("absent", map_users=[{"userarn": OPS_USER}]))] == [
        "map_users[0].userarn"
    ]


def test_changes_that_keep_node_access_are_not_losses():
    assert losses_of(SEED_DATA, request(map_roles=[{**NODE, "username": "node"}])) == []
    assert losses_of(SEED_DATA, request(purge=True, map_roles=[NODE])) == []
    assert losses_of(SEED_DATA, request("absent", map_roles=[{"rolearn": CONTROLLER_ROLE}])) == []


# -- validation ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            {"map_roles": [{"rolearn": "arn:aws:iam::1234:role/x", "username": "x"}]},
            "map_roles[0].rolearn: 'arn:aws:iam::1234:role/x' is not allowed; use an IAM role ARN such as "
            "arn:aws:iam::111122223333:role/NAME",
        ),
        (
            {"map_roles": [{"rolearn": OPS_USER, "username": "x"}]},
            f"map_roles[0].rolearn: '{OPS_USER}' is not allowed; use an IAM role ARN",
        ),
        (
            {"map_users": [{"userarn": NODE_ROLE, "username": "x"}]},
            f"map_users[0].userarn: '{NODE_ROLE}' is not allowed; use an IAM user ARN such as "
            "arn:aws:iam::111122223333:user/NAME",
        ),
        (
            {"map_roles": [{"rolearn": "arn:aws-cn:iam::111122223333:role/team/app", "username": "x"}]},
            "map_roles[0].rolearn: 'arn:aws-cn:iam::111122223333:role/team/app' is not allowed; aws-auth matches "
            "role ARNs without their path, use 'arn:aws-cn:iam::111122223333:role/app'",
        ),
        (
            {"map_roles": [{"rolearn": "arn:aws:sts::111122223333:assumed-role/x/y", "username": "x"}]},
            "map_roles[0].rolearn: 'arn:aws:sts::111122223333:assumed-role/x/y' is not allowed",
        ),
        (
            {"map_roles": [CONTROLLER, {**CONTROLLER}]},
            f"map_roles[1].rolearn: '{CONTROLLER_ROLE}' is not allowed; it is already listed as map_roles[0]",
        ),
        (
            {"map_roles": [{"rolearn": CONTROLLER_ROLE}]},
            f"map_roles[0].username: None is not allowed; state=present needs a username for {CONTROLLER_ROLE}",
        ),
        (
            {"map_users": [{"userarn": OPS_USER, "username": "two words"}]},
            "map_users[0].username: 'two words' is not allowed; use a Kubernetes user name without whitespace, "
            "optionally with the placeholders {{AccessKeyID}}",
        ),
        (
            {"map_users": [{"userarn": OPS_USER, "username": "node:{{EC2PublicDNSName}}"}]},
            "map_users[0].username: 'node:{{EC2PublicDNSName}}' is not allowed",
        ),
        (
            {"map_users": [{"userarn": OPS_USER, "username": "node:{{SessionName}"}]},
            "map_users[0].username: 'node:{{SessionName}' is not allowed",
        ),
        (
            {"map_users": [{"userarn": OPS_USER, "username": "ops", "groups": ["ok", ""]}]},
            "map_users[0].groups[1]: '' is not allowed; use a Kubernetes group name without whitespace",
        ),
        (
            {"map_accounts": ["11112222333"]},
            "map_accounts[0]: '11112222333' is not allowed; use a 12-digit AWS account id",
        ),
        ({}, "map_roles, map_users, map_accounts: none given"),
    ],
)
def test_validation_names_field_value_and_what_is_allowed(options, message):
    with pytest.raises(aa.AwsAuthError, match=re.escape(message)):
        request(**options)


def test_purge_with_absent_is_refused():
    with pytest.raises(aa.AwsAuthError, match=r"^purge: true is not allowed with state=absent"):
        request("absent", purge=True, map_accounts=["111122223333"])


def test_absent_needs_only_the_arn():
    req = request("absent", map_roles=[{"rolearn": NODE_ROLE, "username": "ignored but fine"}])
    assert req.map_roles == [{"rolearn": NODE_ROLE}]


def test_valid_placeholders_and_partitions_pass():
    req = request(
        map_roles=[
            {"rolearn": "arn:aws-us-gov:iam::111122223333:role/n", "username": "system:node:{{EC2PrivateDNSName}}"},
            {"rolearn": OTHER_ROLE, "username": "{{AccountID}}:{{SessionNameRaw}}", "groups": ["a", "a"]},
        ]
    )
    assert req.map_roles[1]["groups"] == ["a"]


# -- unreadable ConfigMaps -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"mapRoles": "- rolearn: [unclosed\n"}, "kube-system/aws-auth: data.mapRoles is not valid YAML ("),
        (
            {"mapRoles": f"rolearn: {NODE_ROLE}\n"},
            "kube-system/aws-auth: data.mapRoles is a dict, not a list of mappings",
        ),
        ({"mapUsers": "- just a string\n"}, "kube-system/aws-auth: data.mapUsers entry 0 is a str, not a mapping"),
        ({"mapRoles": "- username: x\n"}, "kube-system/aws-auth: data.mapRoles entry 0 has no rolearn string"),
        (
            {"mapRoles": f"- rolearn: {NODE_ROLE}\n  groups: system:nodes\n"},
            f"data.mapRoles entry 0 ({NODE_ROLE}): groups is not a list of strings",
        ),
        ({"mapAccounts": "a: b\n"}, "kube-system/aws-auth: data.mapAccounts is not a list of account ids"),
    ],
)
def test_unreadable_configmap_is_refused(data, message):
    with pytest.raises(aa.AwsAuthError, match=re.escape(message)) as caught:
        aa.parse(data)
    assert "this module does not overwrite what it cannot read" in str(caught.value)


def test_empty_sections_read_as_empty_lists():
    assert aa.parse({"mapRoles": "", "mapUsers": "  \n", "mapAccounts": "[]"}) == aa.AwsAuth()
    assert aa.describe(None) == {}
