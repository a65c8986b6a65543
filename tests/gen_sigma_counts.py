#!/usr/bin/env python3
"""Expected match counts of the example Sigma rules (correlation-rules/sigma/) on the real
CloudTrail records in ../shared/realdata/, derived WITHOUT a Sigma engine: each rule's intent is
written again below as a plain Python test of event source, event name and fields.

The integration test `sigma_rules_match_the_independent_counts` (tests/it/sigma.rs) runs the
rules through the correlator's Sigma engine over the same files and compares its counts with
tests/sigma_counts.tsv, which this script writes:

    python3 tests/gen_sigma_counts.py            # prints the table
    python3 tests/gen_sigma_counts.py --write    # writes tests/sigma_counts.tsv

Only records the decoder accepts are evaluated (a CloudTrail record needs `eventSource` and a
readable `eventTime`): 310 Stratus Red Team events and 436 of Panther's 453. Sigma compares
strings without case, so the tests below do too.
"""

import json
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
REALDATA = REPO.parent / "shared" / "realdata"
FILES = [
    "stratus-red-team/all-detonations.jsonl",
    "panther-test-events/cloudtrail-test-events.jsonl",
]
OUT = REPO / "tests" / "sigma_counts.tsv"

TIME = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")


def decodable(r):
    """What the decoder accepts: an event source and an event time it can read."""
    t = r.get("eventTime")
    return (
        isinstance(r.get("eventSource"), str)
        and isinstance(r.get("eventName"), str)
        and isinstance(t, str)
        and TIME.match(t) is not None
    )


def values(r, path):
    """Every value at a dotted path, lists walked (any element)."""
    cur = [r]
    for part in path.split("."):
        nxt = []
        for c in cur:
            if isinstance(c, dict) and part in c:
                v = c[part]
                nxt.extend(v if isinstance(v, list) else [v])
        cur = nxt
    return [v for v in cur if v is not None]


def exists(r, path):
    return bool(values(r, path))


def eq(r, path, *wanted):
    wanted = [w.lower() for w in wanted]
    return any(str(v).lower() in wanted for v in values(r, path))


def call(r, source, *names):
    return eq(r, "eventSource", source) and eq(r, "eventName", *names)


def any_str(r, path, test):
    return any(isinstance(v, str) and test(v.lower()) for v in values(r, path))


def failed(r):
    return exists(r, "errorCode")


def by_service(r):
    return any_str(r, "userIdentity.invokedBy", lambda v: v.endswith(".amazonaws.com"))


RULES = {
    "cloudsigma-t1496-compute-resource-creation": lambda r: (
        call(r, "ec2.amazonaws.com", "RunInstances")
        or call(r, "lambda.amazonaws.com", "CreateFunction20150331")
    )
    and not eq(r, "userIdentity.type", "AWSService"),
    "cloudtrail-logging-tampering": lambda r: call(
        r, "cloudtrail.amazonaws.com", "StopLogging", "DeleteTrail", "UpdateTrail", "PutEventSelectors"
    )
    and not failed(r),
    "vpc-flow-logs-deleted": lambda r: call(r, "ec2.amazonaws.com", "DeleteFlowLogs"),
    "dns-query-logging-deleted": lambda r: call(
        r, "route53resolver.amazonaws.com", "DeleteResolverQueryLogConfig"
    ),
    "secrets-manager-secret-read": lambda r: call(
        r, "secretsmanager.amazonaws.com", "GetSecretValue", "BatchGetSecretValue"
    )
    and not eq(r, "userIdentity.type", "AWSService")
    and not by_service(r),
    "ssm-securestring-read": lambda r: call(
        r, "ssm.amazonaws.com", "GetParameter", "GetParameters", "GetParametersByPath"
    )
    and any(v is True or str(v).lower() == "true" for v in values(r, "requestParameters.withDecryption")),
    "iam-user-credentials-created": lambda r: call(
        r, "iam.amazonaws.com", "CreateAccessKey", "CreateLoginProfile", "UpdateLoginProfile"
    )
    and not failed(r),
    "iam-admin-policy-attached": lambda r: call(
        r, "iam.amazonaws.com", "AttachUserPolicy", "AttachRolePolicy", "AttachGroupPolicy"
    )
    and any_str(r, "requestParameters.policyArn", lambda v: v.endswith(":policy/administratoraccess")),
    "iam-role-trust-opened": lambda r: (
        call(r, "iam.amazonaws.com", "UpdateAssumeRolePolicy")
        and any_str(r, "requestParameters.policyDocument", lambda v: '"aws"' in v or '"principal":"*"' in v)
    )
    or (
        call(r, "iam.amazonaws.com", "CreateRole")
        and any_str(
            r, "requestParameters.assumeRolePolicyDocument", lambda v: '"aws"' in v or '"principal":"*"' in v
        )
    ),
    "snapshot-or-image-shared": lambda r: (
        (
            call(r, "ec2.amazonaws.com", "ModifySnapshotAttribute")
            and (
                (
                    eq(r, "requestParameters.attributeType", "CREATE_VOLUME_PERMISSION")
                    and exists(r, "requestParameters.createVolumePermission.add.items.userId")
                )
                or eq(r, "requestParameters.createVolumePermission.add.items.group", "all")
            )
        )
        or (
            call(r, "ec2.amazonaws.com", "ModifyImageAttribute")
            and (
                (
                    eq(r, "requestParameters.attributeType", "launchPermission")
                    and exists(r, "requestParameters.launchPermission.add.items.userId")
                )
                or eq(r, "requestParameters.launchPermission.add.items.group", "all")
            )
        )
        or (
            call(r, "rds.amazonaws.com", "ModifyDBSnapshotAttribute", "ModifyDBClusterSnapshotAttribute")
            and eq(r, "requestParameters.attributeName", "restore")
            and any_str(r, "requestParameters.valuesToAdd", lambda v: re.fullmatch(r"all|[0-9]{12}", v) is not None)
        )
    )
    and not failed(r),
    "ssm-remote-execution": lambda r: call(r, "ssm.amazonaws.com", "SendCommand", "StartSession")
    and not by_service(r),
    "ec2-ssh-key-pushed": lambda r: call(
        r, "ec2-instance-connect.amazonaws.com", "SendSSHPublicKey", "SendSerialConsoleSSHPublicKey"
    )
    and not failed(r),
    "ec2-user-data-modified": lambda r: call(r, "ec2.amazonaws.com", "ModifyInstanceAttribute")
    and exists(r, "requestParameters.userData"),
    "console-login-without-mfa": lambda r: call(r, "signin.amazonaws.com", "ConsoleLogin")
    and eq(r, "additionalEventData.MFAUsed", "No")
    and eq(r, "responseElements.ConsoleLogin", "Success")
    and not any_str(r, "userIdentity.arn", lambda v: ":assumed-role/" in v),
    "organizations-leave": lambda r: call(r, "organizations.amazonaws.com", "LeaveOrganization"),
    "lambda-layer-added": lambda r: call(
        r, "lambda.amazonaws.com", "UpdateFunctionConfiguration20150331v2", "CreateFunction20150331"
    )
    and any_str(r, "requestParameters.layers", lambda v: v.startswith("arn:aws:lambda:")),
    "lambda-function-made-public": lambda r: call(
        r, "lambda.amazonaws.com", "AddPermission20150331", "AddPermission20150331v2"
    )
    and eq(r, "requestParameters.principal", "*"),
}


def main():
    records = []
    for f in FILES:
        with open(REALDATA / f) as fh:
            records.extend(r for r in map(json.loads, fh) if decodable(r))
    assert len(records) == 310 + 436, len(records)
    rules_dir = REPO / "correlation-rules" / "sigma"
    shipped = sorted(p.stem for p in rules_dir.glob("*.yml"))
    missing = set(shipped) ^ set(RULES)
    assert not missing, f"rules without an independent count, or counts without a rule: {missing}"
    lines = ["# rule id\tmatches on ../shared/realdata (tests/gen_sigma_counts.py; no Sigma engine)"]
    for rule in sorted(RULES):
        n = sum(1 for r in records if RULES[rule](r))
        lines.append(f"{rule}\t{n}")
    text = "\n".join(lines) + "\n"
    if "--write" in sys.argv:
        OUT.write_text(text)
    print(text, end="")


if __name__ == "__main__":
    main()
