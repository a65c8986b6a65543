#!/usr/bin/env python3
"""Generates the roll-up scenarios of fixtures/scenarios/roll-up/ from the rules' own scenarios.

Each case copies the records of other scenarios, renames what identifies them (groups,
instances, roles, keys; every CloudTrail eventID and GuardDuty finding id is replaced by a
stable hash, so a run over all of fixtures/ never meets two versions of one record) and moves
them in time so that two stories overlap:

- two-attacks: shop-asg's compromise (compromised-instance-group/positive) and api-asg's GPU
  launches (instance-credentials-launch-compute/positive), renamed cart-asg and media-asg and
  moved to the same morning in one account: two independent attacks on two groups.
- ci-launches-overlap: the same compromise (renamed pos-asg) while a CI role launches its
  load-test fleet (the launches of mass-compute-deployment/positive, made by a CI role session
  and moved into the attack's hours): the CI role's launches stay a finding of their own.

Run from the repository root: python3 tests/gen_rollup_scenarios.py (expected.yaml files are
written by hand, not by this script).
"""

import datetime as dt
import hashlib
import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = ROOT / "fixtures" / "scenarios"
OUT = SCENARIOS / "roll-up"

ISO = re.compile(r"(\d{4}-\d{2}-\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d+)?Z")
EPOCH_MS = re.compile(r"(?<![0-9])(17\d{11})(?![0-9])")
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
HEX32 = re.compile(r"(?<![0-9a-f])[0-9a-f]{32}(?![0-9a-f])")
FILE_TIME = re.compile(r"_(\d{8})T(\d{4})Z_")


def stable(salt: str, old: str, n: int) -> str:
    return hashlib.sha256(f"{salt}/{old}".encode()).hexdigest()[:n]


def shift_iso(m: re.Match, seconds: int) -> str:
    t = dt.datetime.fromisoformat(f"{m.group(1)}T{m.group(2)}:{m.group(3)}:{m.group(4)}+00:00")
    t += dt.timedelta(seconds=seconds)
    return t.strftime("%Y-%m-%dT%H:%M:%S") + (m.group(5) or "") + "Z"


def transform(text: str, salt: str, seconds: int, renames) -> str:
    for old, new in renames:
        text = text.replace(old, new)
    text = UUID.sub(
        lambda m: "-".join(
            stable(salt, m.group(0), 32)[a:b] for a, b in ((0, 8), (8, 12), (12, 16), (16, 20), (20, 32))
        ),
        text,
    )
    # GuardDuty finding (and detector) ids.
    text = HEX32.sub(lambda m: stable(salt, m.group(0), 32), text)
    text = ISO.sub(lambda m: shift_iso(m, seconds), text)
    text = EPOCH_MS.sub(lambda m: str(int(m.group(1)) + seconds * 1000), text)
    return text


def file_name(name: str, seconds: int) -> str:
    def sub(m: re.Match) -> str:
        t = dt.datetime.strptime(m.group(1) + m.group(2), "%Y%m%d%H%M") + dt.timedelta(seconds=seconds)
        return "_" + t.strftime("%Y%m%dT%H%MZ") + "_"

    return FILE_TIME.sub(sub, name)


def copy_case(src: str, dst: Path, salt: str, seconds: int, renames, identity=None) -> None:
    dst.mkdir(parents=True, exist_ok=True)
    for f in sorted((SCENARIOS / src).iterdir()):
        if f.name == "expected.yaml" or not f.is_file():
            continue
        text = transform(f.read_text(), salt, seconds, renames)
        if identity is not None:
            text = with_identity(text, identity, f.suffix == ".jsonl")
        (dst / file_name(f.name, seconds)).write_text(text)


def with_identity(text: str, identity, lines: bool) -> str:
    """Every CloudTrail record's caller becomes `identity` (from an IP and agent of its own)."""

    def fix(r: dict) -> dict:
        r["userIdentity"] = identity
        r["sourceIPAddress"] = "198.51.100.77"
        r["userAgent"] = "gitlab-runner 16.11.0 (aws-cli/2.15.30)"
        return r

    if not lines:
        doc = json.loads(text)
        if "Records" in doc:
            doc["Records"] = [fix(r) for r in doc["Records"]]
        else:
            doc = fix(doc)
        return json.dumps(doc, indent=2) + "\n"
    lines = [json.dumps(fix(json.loads(line)), separators=(",", ":")) for line in text.splitlines() if line.strip()]
    return "\n".join(lines) + "\n"


def main() -> None:
    cart = [
        ("shop-asg", "cart-asg"),
        ("shop-instance", "cart-instance"),
        ("0a15ce", "0f45ce"),
        ("AROAEXAMPLESHOPROLE01", "AROAEXAMPLECARTROLE01"),
        ("ASIAEXAMPLESHOPKEY01", "ASIAEXAMPLECARTKEY01"),
        ("AIPAEXAMPLESHOPPROF01", "AIPAEXAMPLECARTPROF01"),
    ]
    media = [
        ("api-asg", "media-asg"),
        ("api-instance", "media-instance"),
        ("0b15ce", "0f55ce"),
        ("AROAEXAMPLEAPIROLE001", "AROAEXAMPLEMEDIAROLE1"),
        ("ASIAEXAMPLEAPIKEYB01", "ASIAEXAMPLEMEDIAKEY1"),
        ("AIPAEXAMPLEAPIPROF001", "AIPAEXAMPLEMEDIAPROF1"),
    ]
    two = OUT / "two-attacks"
    copy_case("compromised-instance-group/positive", two, "two-attacks/cart", 0, cart)
    # api-asg's launches at 2025-05-05T12:10 move to 2025-05-03T08:10, inside cart-asg's attack.
    copy_case(
        "instance-credentials-launch-compute/positive",
        two,
        "two-attacks/media",
        -(2 * 86400 + 4 * 3600),
        media,
    )

    pos = [
        ("shop-asg", "pos-asg"),
        ("shop-instance", "pos-instance"),
        ("0a15ce", "0f65ce"),
        ("AROAEXAMPLESHOPROLE01", "AROAEXAMPLEPOSROLE001"),
        ("ASIAEXAMPLESHOPKEY01", "ASIAEXAMPLEPOSKEY001"),
        ("AIPAEXAMPLESHOPPROF01", "AIPAEXAMPLEPOSPROF001"),
    ]
    ci = OUT / "ci-launches-overlap"
    copy_case("compromised-instance-group/positive", ci, "ci-launches-overlap/pos", 0, pos)
    session = "gitlab-runner-5521"
    identity = {
        "type": "AssumedRole",
        "principalId": f"AROAEXAMPLECILOADTST1:{session}",
        "arn": f"arn:aws:sts::111122223333:assumed-role/ci-load-test/{session}",
        "accountId": "111122223333",
        "accessKeyId": "ASIAEXAMPLECILOADTS1",
        "sessionContext": {
            "sessionIssuer": {
                "type": "Role",
                "principalId": "AROAEXAMPLECILOADTST1",
                "arn": "arn:aws:iam::111122223333:role/ci-load-test",
                "accountId": "111122223333",
                "userName": "ci-load-test",
            },
            "attributes": {"creationDate": "2025-05-03T07:50:02Z", "mfaAuthenticated": "false"},
        },
    }
    # The load-test launches at 2025-05-07T10:02:18 move to 2025-05-03T07:58:00.
    moved = dt.datetime(2025, 5, 3, 7, 58, 0) - dt.datetime(2025, 5, 7, 10, 2, 18)
    copy_case(
        "mass-compute-deployment/positive",
        ci,
        "ci-launches-overlap/ci",
        int(moved.total_seconds()),
        [("0c15ce", "0f75ce")],
        identity,
    )


if __name__ == "__main__":
    main()
