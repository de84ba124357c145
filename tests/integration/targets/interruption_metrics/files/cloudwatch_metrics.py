# -*- coding: utf-8 -*-

# Copyright: Contributors to the spotmax.maxgroup project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Test helper: what CloudWatch holds in a namespace of the local world (no Ansible module reads metrics).

``python cloudwatch_metrics.py ENDPOINT REGION NAMESPACE`` prints, as JSON, every metric of the namespace as
``{"metric_name", "dimensions": {name: value}, "sum", "maximum", "sample_count"}`` over the last hour.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime, timedelta

import boto3


def main(argv):
    endpoint, region, namespace = argv[:3]
    cloudwatch = boto3.client(
        "cloudwatch",
        endpoint_url=endpoint,
        region_name=region,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    now = datetime.now(UTC)
    found = []
    for metric in cloudwatch.list_metrics(Namespace=namespace).get("Metrics", []):
        points = cloudwatch.get_metric_statistics(
            Namespace=namespace,
            MetricName=metric["MetricName"],
            Dimensions=metric["Dimensions"],
            StartTime=now - timedelta(hours=1),
            EndTime=now + timedelta(minutes=5),
            Period=3600,
            Statistics=["Sum", "Maximum", "SampleCount"],
        ).get("Datapoints", [])
        found.append(
            {
                "metric_name": metric["MetricName"],
                "dimensions": {d["Name"]: d["Value"] for d in metric["Dimensions"]},
                "sum": sum(point["Sum"] for point in points),
                "maximum": max((point["Maximum"] for point in points), default=None),
                "sample_count": sum(point["SampleCount"] for point in points),
            }
        )
    return sorted(found, key=lambda m: (m["metric_name"], sorted(m["dimensions"].items())))


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1:])))
