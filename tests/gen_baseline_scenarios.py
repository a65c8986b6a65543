#!/usr/bin/env python3
"""Writes the scenarios of the baseline rules (first-seen-launch, launch-rate-outlier) under
fixtures/scenarios/. Deterministic: running it again gives the same bytes.

    python3 tests/gen_baseline_scenarios.py

The records are CloudTrail RunInstances events in the shape of the main fixtures (see
fixtures/README.md): the same fields and documentation IP ranges, and one account per case
(777788880001 to 777788880005), which no other fixture uses, so reading all of fixtures/ at
once keeps every case's baselines apart (baselines are per account). Each case carries its own benign history
from 2025-04-10, before the activity it is about: baselines learn from the same stream.
"""

import hashlib
import json
import os
from datetime import datetime, timedelta, timezone

# One account per case, so that reading all of fixtures/ at once keeps each case's history
# apart (baselines are per account).
ACCOUNTS = {
    "first-seen-launch/positive": "777788880001",
    "first-seen-launch/negative": "777788880002",
    "launch-rate-outlier/positive": "777788880004",
    "launch-rate-outlier/negative": "777788880005",
}
LEARNING_ACCOUNT = "777788880003"
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "scenarios")
START = datetime(2025, 4, 10, tzinfo=timezone.utc)


def uid(*parts):
    """A stable UUID-shaped id from a label."""
    h = hashlib.sha256("/".join(map(str, parts)).encode()).hexdigest()
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-8{h[17:20]}-{h[20:32]}"


def hexid(prefix, *parts, n=17):
    return prefix + hashlib.sha256("/".join(map(str, parts)).encode()).hexdigest()[:n]


def ts(t):
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


VCPUS = {"c5.xlarge": (2, 2), "c5.4xlarge": (8, 2), "m5.large": (1, 2), "g4dn.12xlarge": (24, 2),
         "t3.medium": (1, 2)}


def identity(kind, account, name, session=None, key=None):
    if kind == "role":
        role_id = hexid("AROA", account, name, n=16).upper()
        ident = {
            "type": "AssumedRole",
            "principalId": f"{role_id}:{session}",
            "arn": f"arn:aws:sts::{account}:assumed-role/{name}/{session}",
            "accountId": account,
            "accessKeyId": hexid("ASIA", account, name, session, n=16).upper(),
            "sessionContext": {
                "sessionIssuer": {"type": "Role", "principalId": role_id,
                                  "arn": f"arn:aws:iam::{account}:role/{name}",
                                  "accountId": account, "userName": name},
                "attributes": {"creationDate": None, "mfaAuthenticated": "false"},
            },
        }
        if session.startswith("i-"):
            ident["sessionContext"]["ec2RoleDelivery"] = "2.0"
        return ident
    if kind == "autoscaling":
        role_id = hexid("AROA", account, "asg", n=16).upper()
        return {
            "type": "AssumedRole",
            "principalId": f"{role_id}:AutoScaling",
            "arn": f"arn:aws:sts::{account}:assumed-role/AWSServiceRoleForAutoScaling/AutoScaling",
            "accountId": account,
            "sessionContext": {
                "sessionIssuer": {
                    "type": "Role", "principalId": role_id,
                    "arn": f"arn:aws:iam::{account}:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling",
                    "accountId": account, "userName": "AWSServiceRoleForAutoScaling"},
                "attributes": {"creationDate": None, "mfaAuthenticated": "false"},
            },
            "invokedBy": "autoscaling.amazonaws.com",
        }
    user_id = hexid("AIDA", account, name, n=16).upper()
    return {
        "type": "IAMUser",
        "principalId": user_id,
        "arn": f"arn:aws:iam::{account}:user/{name}",
        "accountId": account,
        "accessKeyId": key,
        "userName": name,
    }


def run_instances(t, account, region, ident, itype, ami, count, label, tags=(), ip="192.0.2.80",
                  agent="aws-cli/2.15.30 Python/3.11.8 Linux/6.1.0 exe/x86_64.amzn.2023 prompt/off command/ec2.run-instances"):
    """A successful RunInstances of `count` instances."""
    if ident.get("sessionContext"):
        ident["sessionContext"]["attributes"]["creationDate"] = ts(t - timedelta(seconds=40))
    vpc = hexid("vpc-", account, region)
    subnet = hexid("subnet-", account, region)
    cores, threads = VCPUS[itype]
    items = []
    for i in range(count):
        iid = hexid("i-0", label, i, n=16)
        octet = int(hashlib.sha256(iid.encode()).hexdigest()[:2], 16)
        items.append({
            "instanceId": iid, "imageId": ami,
            "instanceState": {"code": 0, "name": "pending"},
            "privateDnsName": f"ip-10-40-{i % 250}-{octet}.{region}.compute.internal",
            "amiLaunchIndex": i, "productCodes": {}, "instanceType": itype,
            "launchTime": int(t.timestamp() * 1000),
            "placement": {"availabilityZone": f"{region}a", "tenancy": "default"},
            "monitoring": {"state": "disabled"}, "subnetId": subnet, "vpcId": vpc,
            "privateIpAddress": f"10.40.{i % 250}.{octet}",
            "stateReason": {"code": "pending", "message": "pending"}, "architecture": "x86_64",
            "rootDeviceType": "ebs", "rootDeviceName": "/dev/xvda", "blockDeviceMapping": {},
            "virtualizationType": "hvm", "hypervisor": "xen",
            "groupSet": {"items": [{"groupId": hexid("sg-", account, region), "groupName": "default"}]},
            "sourceDestCheck": True, "ebsOptimized": True, "enaSupport": True,
            "cpuOptions": {"coreCount": cores, "threadsPerCore": threads},
            "metadataOptions": {"state": "pending", "httpTokens": "required",
                                "httpPutResponseHopLimit": 2, "httpEndpoint": "enabled"},
            "tagSet": {"items": [{"key": k, "value": v} for k, v in tags]} if tags else {},
        })
    request_id = uid("request", label)
    record = {
        "eventVersion": "1.10",
        "userIdentity": ident,
        "eventTime": ts(t),
        "eventSource": "ec2.amazonaws.com",
        "eventName": "RunInstances",
        "awsRegion": region,
        "sourceIPAddress": "autoscaling.amazonaws.com" if ident.get("invokedBy") else ip,
        "userAgent": "autoscaling.amazonaws.com" if ident.get("invokedBy") else agent,
        "requestParameters": {
            "instancesSet": {"items": [{"imageId": ami, "minCount": count, "maxCount": count}]},
            "instanceType": itype, "blockDeviceMapping": {}, "monitoring": {"enabled": False},
            "subnetId": subnet, "disableApiTermination": False,
        },
        "responseElements": {
            "requestId": request_id, "reservationId": hexid("r-0", label, n=16),
            "ownerId": account, "groupSet": {}, "instancesSet": {"items": items},
        },
        "requestID": request_id,
        "eventID": uid("event", label),
        "readOnly": False,
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": account,
        "eventCategory": "Management",
    }
    if ident.get("invokedBy"):
        record["responseElements"]["requesterId"] = "444455556666"
    if ident.get("type") == "AssumedRole" and not ident.get("invokedBy"):
        record["tlsDetails"] = {"tlsVersion": "TLSv1.3",
                                "cipherSuite": "TLS_AES_128_GCM_SHA256",
                                "clientProvidedHostHeader": f"ec2.{region}.amazonaws.com"}
    return record


def history(account, days, ci_sizes=None):
    """Benign launches from START: a build role's nightly launches and Auto Scaling
    replacing storefront-asg members in us-east-1."""
    out = []
    for d in range(days):
        day = START + timedelta(days=d)
        n = ci_sizes[d % len(ci_sizes)] if ci_sizes else 2
        out.append(run_instances(
            day + timedelta(hours=2, seconds=7 * d), account, "us-east-1",
            identity("role", account, "build-fleet", f"build-{day:%Y%m%d}"),
            "c5.xlarge", "ami-0b5e1a00000000001", n, f"{account}/build/{d}",
            tags=[("Name", "build-runner"), ("pipeline", "nightly")],
            agent="APN/1.0 HashiCorp/1.0 Terraform/1.8.2 (+https://www.terraform.io) terraform-provider-aws/5.46.0"))
        out.append(run_instances(
            day + timedelta(hours=9, minutes=d), account, "us-east-1",
            identity("autoscaling", account, "asg"), "m5.large", "ami-0a91a000000000001", 1,
            f"{account}/storefront-asg/{d}",
            tags=[("Name", "storefront"), ("aws:autoscaling:groupName", "storefront-asg"),
                  ("aws:ec2launchtemplate:id", "lt-0a91a000000000001"),
                  ("aws:ec2launchtemplate:version", "4")]))
    return out


def write(case, name, description, records):
    d = os.path.join(ROOT, case)
    os.makedirs(d, exist_ok=True)
    records = sorted(records, key=lambda r: (r["eventTime"], r["eventID"]))
    with open(os.path.join(d, name), "w") as f:
        for r in records:
            f.write(json.dumps(r, separators=(",", ":")) + "\n")
    print(f"{case}/{name}: {len(records)} record(s) — {description}")


def api_instance(account, day):
    """The storefront-asg member Auto Scaling launched on history day `day`."""
    return hexid("i-0", f"{account}/storefront-asg/{day}", 0, n=16)


def main():
    # first-seen-launch, positive: an storefront-asg member's role credentials launch GPU instances
    # in a region, with an AMI and a type the account never used, after 20 days of history.
    ACCOUNT = ACCOUNTS["first-seen-launch/positive"]
    victim = api_instance(ACCOUNT, 19)
    attack = run_instances(
        datetime(2025, 5, 4, 13, 5, 12, tzinfo=timezone.utc), ACCOUNT, "ap-northeast-3",
        identity("role", ACCOUNT, "storefront-instance-role", victim),
        "g4dn.12xlarge", "ami-0c1a551c000000001", 3, f"{ACCOUNT}/attack/first-seen",
        ip="203.0.113.77",
        agent="Boto3/1.34.69 md/Botocore#1.34.69 ua/2.0 os/linux#5.15.0 md/arch#x86_64 lang/python#3.10.12 cfg/retry-mode#legacy Botocore/1.34.69")
    write("first-seen-launch/positive", "cloudtrail-launches.jsonl",
          "history, then instance credentials launch GPUs in a new region",
          history(ACCOUNT, 20) + [attack])

    # first-seen-launch, negative: the same history; the build role launches as every night,
    # Auto Scaling launches in a region new to the account (a service: learned, never
    # reported), and a second account launches in a new region while it is still learning.
    ACCOUNT = ACCOUNTS["first-seen-launch/negative"]
    later = START + timedelta(days=24)
    quiet = [
        run_instances(later + timedelta(hours=2), ACCOUNT, "us-east-1",
                      identity("role", ACCOUNT, "build-fleet", f"build-{later:%Y%m%d}"),
                      "c5.xlarge", "ami-0b5e1a00000000001", 2, f"{ACCOUNT}/build/late",
                      tags=[("Name", "build-runner"), ("pipeline", "nightly")]),
        run_instances(later + timedelta(hours=9), ACCOUNT, "us-west-2",
                      identity("autoscaling", ACCOUNT, "asg"), "m5.large", "ami-0a91a000000000002",
                      2, f"{ACCOUNT}/dr-asg/late",
                      tags=[("Name", "storefront-dr"), ("aws:autoscaling:groupName", "storefront-dr-asg")]),
        run_instances(datetime(2025, 5, 1, 10, 0, 0, tzinfo=timezone.utc), LEARNING_ACCOUNT,
                      "eu-central-1", identity("role", LEARNING_ACCOUNT, "platform", "tf-apply-1"),
                      "m5.large", "ami-0e0e0e00000000001", 1, f"{LEARNING_ACCOUNT}/first"),
        run_instances(datetime(2025, 5, 3, 10, 0, 0, tzinfo=timezone.utc), LEARNING_ACCOUNT,
                      "sa-east-1", identity("role", LEARNING_ACCOUNT, "platform", "tf-apply-2"),
                      "c5.4xlarge", "ami-0e0e0e00000000002", 1, f"{LEARNING_ACCOUNT}/second"),
    ]
    write("first-seen-launch/negative", "cloudtrail-launches.jsonl",
          "routine launches, Auto Scaling in a new region, a new region while learning",
          history(ACCOUNT, 20) + quiet)

    # launch-rate-outlier, positive: an IAM user's access key that launches one or two
    # t3.medium a day launches twelve c5.4xlarge at once (192 vCPUs: under the vCPU sums
    # of mass-compute-deployment, above the user's own rate).
    ACCOUNT = ACCOUNTS["launch-rate-outlier/positive"]
    key = "AKIAEXAMPLEDEPLOY777"
    deployer = []
    for d in range(24):
        day = START + timedelta(days=d)
        deployer.append(run_instances(
            day + timedelta(hours=15, minutes=3 * d), ACCOUNT, "us-east-1",
            identity("user", ACCOUNT, "deploy-bot", key=key), "t3.medium",
            "ami-0d3a1000000000001", 1 + d % 2, f"{ACCOUNT}/deploy/{d}",
            tags=[("Name", "review-app")]))
    burst = run_instances(
        datetime(2025, 5, 5, 3, 12, 40, tzinfo=timezone.utc), ACCOUNT, "us-east-1",
        identity("user", ACCOUNT, "deploy-bot", key=key), "c5.4xlarge", "ami-0d3a1000000000001",
        12, f"{ACCOUNT}/attack/burst", ip="198.51.100.201",
        agent="aws-cli/2.15.30 Python/3.11.8 Linux/6.5.0 exe/x86_64.ubuntu.22 prompt/off command/ec2.run-instances")
    write("launch-rate-outlier/positive", "cloudtrail-launches.jsonl",
          "a user's usual one or two instances a day, then twelve at once",
          history(ACCOUNT, 20) + deployer + [burst])

    # launch-rate-outlier, negative: a CI role that launches 18 to 22 instances every night
    # launches 23; Auto Scaling scales storefront-asg out by 30 at once.
    ACCOUNT = ACCOUNTS["launch-rate-outlier/negative"]
    sizes = [18, 20, 22, 19, 21, 20]
    ci_night = START + timedelta(days=25)
    quiet = [
        run_instances(ci_night + timedelta(hours=2), ACCOUNT, "us-east-1",
                      identity("role", ACCOUNT, "build-fleet", f"build-{ci_night:%Y%m%d}"),
                      "c5.xlarge", "ami-0b5e1a00000000001", 23, f"{ACCOUNT}/build/big",
                      tags=[("Name", "build-runner"), ("pipeline", "nightly")]),
        run_instances(ci_night + timedelta(hours=12), ACCOUNT, "us-east-1",
                      identity("autoscaling", ACCOUNT, "asg"), "m5.large", "ami-0a91a000000000001",
                      30, f"{ACCOUNT}/storefront-asg/scale-out",
                      tags=[("Name", "storefront"), ("aws:autoscaling:groupName", "storefront-asg")]),
    ]
    write("launch-rate-outlier/negative", "cloudtrail-launches.jsonl",
          "a CI role's usual nightly 18-22 instances, then 23; Auto Scaling scales out by 30",
          history(ACCOUNT, 25, ci_sizes=sizes) + quiet)


if __name__ == "__main__":
    main()
