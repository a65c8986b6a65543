"""Validates ASFF findings against the Security Hub service model that botocore ships.

Usage: python tests/asff_validate.py FILE...   (each FILE holds {"Findings": [...]})

Two independent checks, both must pass:
1. botocore's own ParamValidator on the BatchImportFindings input shape: required members,
   types, unknown members, minimum lengths and ranges, as the AWS SDKs check before sending.
2. A walk of the AwsSecurityFinding shape from the same model for what ParamValidator leaves
   out: enums, `pattern`s, maximum list lengths and integer ranges; plus the limits the
   Security Hub user guide documents outside the model (Title 256, Description 1024, Id 512,
   32 resources, 50 types, 10 related findings, ProductFields 50 pairs, 240 KB a finding,
   RFC 3339 timestamps).

Exits 1 and prints every problem with the finding Id and the path of the value.
"""

import json
import re
import sys

import botocore.session
from botocore.validate import ParamValidator

RFC3339 = re.compile(
    r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$"
)
TIMESTAMP_MEMBERS = {
    "CreatedAt",
    "UpdatedAt",
    "FirstObservedAt",
    "LastObservedAt",
    "ProcessedAt",
}
DOCUMENTED_LIMITS = {
    # path suffix: (max characters or items, what)
    "Title": 256,
    "Description": 1024,
    "Id": 512,
    "GeneratorId": 512,
    "Resources": 32,
    "Types": 50,
    "RelatedFindings": 10,
    "ProductFields": 50,
    "UserDefinedFields": 50,
    "Remediation.Recommendation.Text": 512,
    "SourceUrl": 2048,
}


def walk(shape, value, path, problems):
    kind = shape.type_name
    meta = shape.metadata
    if kind == "structure":
        if not isinstance(value, dict):
            problems.append(f"{path}: expected an object, found {type(value).__name__}")
            return
        for req in shape.required_members:
            if req not in value:
                problems.append(f"{path}: missing required member {req}")
        for k, v in value.items():
            if k not in shape.members:
                problems.append(f"{path}: unknown member {k}")
                continue
            walk(shape.members[k], v, f"{path}.{k}" if path else k, problems)
    elif kind == "list":
        if not isinstance(value, list):
            problems.append(f"{path}: expected a list")
            return
        if "min" in meta and len(value) < meta["min"]:
            problems.append(f"{path}: {len(value)} items, at least {meta['min']} expected")
        if "max" in meta and len(value) > meta["max"]:
            problems.append(f"{path}: {len(value)} items, at most {meta['max']} allowed")
        for i, v in enumerate(value):
            walk(shape.member, v, f"{path}[{i}]", problems)
    elif kind == "map":
        if not isinstance(value, dict):
            problems.append(f"{path}: expected a map")
            return
        for k, v in value.items():
            walk(shape.key, k, f"{path} key {k!r}", problems)
            walk(shape.value, v, f"{path}[{k!r}]", problems)
    elif kind == "string":
        if not isinstance(value, str):
            problems.append(f"{path}: expected a string, found {type(value).__name__}")
            return
        if "enum" in meta and value not in meta["enum"]:
            problems.append(f"{path}: {value!r} is not one of {meta['enum']}")
        if "pattern" in meta and not re.fullmatch(meta["pattern"], value, re.S):
            problems.append(f"{path}: {value!r} does not match {meta['pattern']}")
        if "max" in meta and len(value) > meta["max"]:
            problems.append(f"{path}: longer than {meta['max']}")
    elif kind in ("integer", "long"):
        if isinstance(value, bool) or not isinstance(value, int):
            problems.append(f"{path}: expected an integer, found {value!r}")
            return
        if "min" in meta and value < meta["min"]:
            problems.append(f"{path}: {value} below {meta['min']}")
        if "max" in meta and value > meta["max"]:
            problems.append(f"{path}: {value} above {meta['max']}")
        if kind == "integer" and not -(2**31) <= value < 2**31:
            problems.append(f"{path}: {value} does not fit a 32-bit integer")
    elif kind in ("double", "float"):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            problems.append(f"{path}: expected a number, found {value!r}")
    elif kind == "boolean":
        if not isinstance(value, bool):
            problems.append(f"{path}: expected a boolean")


def documented(finding, problems):
    for suffix, limit in DOCUMENTED_LIMITS.items():
        value = finding
        for part in suffix.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        if not isinstance(value, (str, list)):
            continue  # absent, or of the wrong type (the model check names it)
        if len(value) > limit:
            problems.append(f"{suffix}: {len(value)} over the documented limit {limit}")
    for k, v in finding.get("ProductFields", {}).items():
        if len(k) > 128 or len(v) > 2048:
            problems.append(f"ProductFields[{k!r}]: key over 128 or value over 2048 characters")
    for m in TIMESTAMP_MEMBERS:
        if m in finding and not (isinstance(finding[m], str) and RFC3339.match(finding[m])):
            problems.append(f"{m}: {finding[m]!r} is not an RFC 3339 timestamp")
    size = len(json.dumps(finding).encode())
    if size > 240 * 1024:
        problems.append(f"finding is {size} bytes, over 240 KB")
    if "Workflow" in finding or "Note" in finding:
        problems.append("a provider must not set Workflow or Note")
    sev = finding.get("Severity", {})
    if "Label" not in sev and "Normalized" not in sev:
        problems.append("Severity needs Label or Normalized")
    if not finding.get("Types"):
        problems.append("Types must be given")
    if not finding.get("Resources"):
        problems.append("Resources must hold at least one resource")


def main(paths):
    model = botocore.session.get_session().get_service_model("securityhub")
    shape = model.shape_for("AwsSecurityFinding")
    request = model.operation_model("BatchImportFindings").input_shape
    failures = 0
    checked = 0
    for p in paths:
        with open(p) as fh:
            doc = json.load(fh)
        findings = doc["Findings"]
        if findings:
            report = ParamValidator().validate({"Findings": findings}, request)
            if report.has_errors():
                failures += 1
                print(f"{p}: botocore ParamValidator:\n{report.generate_report()}")
        for f in findings:
            checked += 1
            problems = []
            walk(shape, f, "", problems)
            documented(f, problems)
            for pr in problems:
                failures += 1
                print(f"{p}: {f.get('Id', '?')}: {pr}")
    print(f"{checked} finding(s) checked against {shape.name} of securityhub "
          f"{model.api_version} (botocore {botocore.__version__}): {failures} problem(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
