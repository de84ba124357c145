# -*- coding: utf-8 -*-

# Copyright: Contributors to the spotmax.maxgroup project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Print the dashboard's body as JSON (null when there is none): a reader independent of the module."""

from __future__ import annotations

import json
import sys

import boto3


def main() -> None:
    endpoint, region, name = sys.argv[1:4]
    client = boto3.client("cloudwatch", endpoint_url=endpoint, region_name=region)
    names = [entry["DashboardName"] for entry in client.list_dashboards()["DashboardEntries"]]
    body = json.loads(client.get_dashboard(DashboardName=name)["DashboardBody"]) if name in names else None
    print(json.dumps(body))


if __name__ == "__main__":
    main()
