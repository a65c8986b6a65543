#!/usr/bin/env python3
"""Renders the IAM policies of the deploy template (deploy/correlator.yaml) for given parameter
values, as CloudFormation would: conditions evaluated, Fn::If branches chosen, AWS::NoValue
dropped, Ref/Fn::Sub/Fn::GetAtt/Fn::Join/Fn::Select resolved against an example account.

Prints one JSON object: {"Roles": {"<Role>": {"<PolicyName>": <policy document>}, ...},
"Environment": {"<NAME>": "<value>", ...}, "Containers": ["<Name>", ...], "Schedules": {"<Schedule>": {"Input": <JSON or
null>}, ...}}, with every AWS::IAM::Role of the template, the environment of the task's
container, and the schedules the parameters deploy with the task overrides they pass.
`tests/run.sh` feeds each policy document to parliament (the IAM policy linter);
`tests/it/deploy.rs` compares the task role's actions with the calls the tool makes, checks the
environment with `correlator validate`, and the shards' schedules and state permissions.

    deploy_policy.py TEMPLATE [--set Name=value ...] [--out DIR]

`--out DIR` also writes each document to DIR/<Role>-<PolicyName>.json.
The template is read with yaml.safe_load, so it must use the long form of intrinsic
functions (`Fn::Sub:`), not `!Sub` tags.
"""

import argparse
import json
import pathlib
import re
import sys

import yaml

ACCOUNT = "111122223333"
REGION = "us-east-1"
PSEUDO = {
    "AWS::AccountId": ACCOUNT,
    "AWS::Region": REGION,
    "AWS::Partition": "aws",
    "AWS::URLSuffix": "amazonaws.com",
    "AWS::StackName": "correlator",
}
# Values for the parameters without a default.
EXAMPLES = {
    "Regions": "us-east-1,eu-west-1",
    "VpcId": "vpc-0123456789abcdef0",
    "SubnetIds": "subnet-0123456789abcdef0",
}


class NoValue:
    """AWS::NoValue: removes the property or list element it is the value of."""


def physical(name, rtype):
    """What Ref of a resource returns, for an example stack."""
    if rtype == "AWS::S3::Bucket":
        return f"correlator-{name.lower()}-example"
    if rtype == "AWS::ECS::TaskDefinition":
        return f"arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/correlator:1"
    if rtype == "AWS::Logs::LogGroup":
        return "/ecs/correlator"
    if rtype == "AWS::SQS::Queue":
        return f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/correlator-{name}-example"
    return f"correlator-{name}-example"


def get_att(name, attr, rtype):
    ref = physical(name, rtype)
    if attr == "Arn":
        if rtype == "AWS::S3::Bucket":
            return f"arn:aws:s3:::{ref}"
        if rtype == "AWS::IAM::Role":
            return f"arn:aws:iam::{ACCOUNT}:role/{ref}"
        if rtype == "AWS::ECS::Cluster":
            return f"arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/{ref}"
        if rtype == "AWS::Logs::LogGroup":
            return f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{ref}:*"
        if rtype == "AWS::SQS::Queue":
            return f"arn:aws:sqs:{REGION}:{ACCOUNT}:{ref.rsplit('/', 1)[1]}"
    if attr == "GroupId":
        return "sg-0123456789abcdef0"
    raise SystemExit(f"deploy_policy.py: no example value for {name}.{attr} ({rtype})")


class Template:
    def __init__(self, doc, values):
        self.doc = doc
        self.resources = doc.get("Resources", {})
        self.params = {}
        for name, spec in doc.get("Parameters", {}).items():
            if name in values:
                raw = values[name]
            elif "Default" in spec:
                raw = str(spec["Default"])
            elif name in EXAMPLES:
                raw = EXAMPLES[name]
            else:
                raise SystemExit(f"deploy_policy.py: parameter {name} needs a value (--set {name}=...)")
            if "AllowedValues" in spec and raw not in [str(v) for v in spec["AllowedValues"]]:
                raise SystemExit(f"deploy_policy.py: {name}={raw!r} is not one of {spec['AllowedValues']}")
            is_list = spec["Type"].startswith("List<") or spec["Type"] == "CommaDelimitedList"
            self.params[name] = raw.split(",") if is_list else raw
        unknown = set(values) - set(self.params)
        if unknown:
            raise SystemExit(f"deploy_policy.py: unknown parameters {sorted(unknown)}")
        self.conditions = {}
        for name in doc.get("Conditions", {}):
            self.condition(name)

    def condition(self, name):
        if name not in self.conditions:
            self.conditions[name] = bool(self.resolve(self.doc["Conditions"][name]))
        return self.conditions[name]

    def ref(self, name):
        if name in PSEUDO:
            return PSEUDO[name]
        if name == "AWS::NoValue":
            return NoValue
        if name in self.params:
            return self.params[name]
        if name in self.resources:
            return physical(name, self.resources[name]["Type"])
        raise SystemExit(f"deploy_policy.py: Ref to unknown {name}")

    def sub(self, text, local):
        def one(m):
            key = m.group(1)
            if key.startswith("!"):
                return "${" + key[1:] + "}"
            if key in local:
                return str(local[key])
            if "." in key:
                res, attr = key.split(".", 1)
                return get_att(res, attr, self.resources[res]["Type"])
            value = self.ref(key)
            if isinstance(value, list):
                raise SystemExit(f"deploy_policy.py: ${{{key}}} is a list in Fn::Sub")
            return str(value)

        return re.sub(r"\$\{([^}]+)\}", one, text)

    def resolve(self, node):
        if isinstance(node, list):
            out = [self.resolve(x) for x in node]
            return [x for x in out if x is not NoValue]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            (key, arg), = node.items()
            if key == "Ref":
                return self.ref(arg)
            if key == "Condition":
                return self.condition(arg)
            if key == "Fn::If":
                name, yes, no = arg
                return self.resolve(yes if self.condition(name) else no)
            if key == "Fn::Equals":
                a, b = (self.resolve(x) for x in arg)
                return a == b
            if key == "Fn::Not":
                return not self.resolve(arg[0])
            if key == "Fn::And":
                return all(self.resolve(x) for x in arg)
            if key == "Fn::Or":
                return any(self.resolve(x) for x in arg)
            if key == "Fn::Sub":
                if isinstance(arg, str):
                    return self.sub(arg, {})
                text, local = arg
                return self.sub(text, {k: self.resolve(v) for k, v in local.items()})
            if key == "Fn::Join":
                sep, items = arg
                return sep.join(str(x) for x in self.resolve(items))
            if key == "Fn::Select":
                index, items = arg
                return self.resolve(items)[int(index)]
            if key == "Fn::GetAtt":
                res, attr = arg if isinstance(arg, list) else arg.split(".", 1)
                return get_att(res, attr, self.resources[res]["Type"])
            if key.startswith("Fn::"):
                raise SystemExit(f"deploy_policy.py: {key} is not supported")
        out = {k: self.resolve(v) for k, v in node.items()}
        return {k: v for k, v in out.items() if v is not NoValue}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("template")
    ap.add_argument("--set", action="append", default=[], metavar="NAME=VALUE")
    ap.add_argument("--out", type=pathlib.Path)
    args = ap.parse_args()
    values = dict(s.split("=", 1) for s in args.set)
    with open(args.template, encoding="utf-8") as f:
        doc = yaml.safe_load(f)
    t = Template(doc, values)
    # Rules: CloudFormation refuses parameters that break an assertion.
    for name, rule in doc.get("Rules", {}).items():
        if "RuleCondition" in rule and not t.resolve(rule["RuleCondition"]):
            continue
        for a in rule.get("Assertions", []):
            if not t.resolve(a["Assert"]):
                raise SystemExit(f"deploy_policy.py: rule {name}: {a.get('AssertDescription', 'refused')}")
    roles = {}
    for name, res in t.resources.items():
        if res["Type"] != "AWS::IAM::Role":
            continue
        if "Condition" in res and not t.condition(res["Condition"]):
            continue
        props = res.get("Properties", {})
        roles[name] = {
            p["PolicyName"]: t.resolve(p["PolicyDocument"]) for p in props.get("Policies", [])
        }
    environment = {}
    containers = []
    for name, res in t.resources.items():
        if res["Type"] == "AWS::ECS::TaskDefinition":
            for container in t.resolve(res["Properties"]["ContainerDefinitions"]):
                containers.append(container["Name"])
                environment.update({e["Name"]: e["Value"] for e in container.get("Environment", [])})
    schedules = {}
    for name, res in t.resources.items():
        if res["Type"] != "AWS::Scheduler::Schedule":
            continue
        if "Condition" in res and not t.condition(res["Condition"]):
            continue
        target = t.resolve(res["Properties"]["Target"])
        schedules[name] = {"Input": json.loads(target["Input"]) if "Input" in target else None}
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        for role, policies in roles.items():
            for policy, document in policies.items():
                path = args.out / f"{role}-{policy}.json"
                path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    json.dump(
        {
            "Roles": roles,
            "Environment": environment,
            "Containers": containers,
            "Schedules": schedules,
        },
        sys.stdout,
        indent=2,
    )
    print()


if __name__ == "__main__":
    main()
