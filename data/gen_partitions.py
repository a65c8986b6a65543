"""Writes data/partitions.json from botocore's partitions data (botocore/data/partitions.json).

Run with the venv's Python after upgrading botocore: `.venv/bin/python data/gen_partitions.py`.
Each partition keeps its id, the region name prefixes of its `regionRegex`
(`^(us|eu|...)\\-\\w+\\-\\d+$` gives us, eu, ...), and its known regions (the `*-global`
pseudo-regions left out).
"""

import json
import os
import re

import botocore

SOURCE = os.path.join(os.path.dirname(botocore.__file__), "data", "partitions.json")
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "partitions.json")


def prefixes(regex):
    # `^cn\-\w+\-\d+$`, `^(us|eu)\-\w+\-\d+$`, `^eusc\-(de)\-\w+\-\d+$`
    m = re.fullmatch(r"\^(.*)\\-\\w\+\\-\\d\+\$", regex)
    if not m:
        raise SystemExit(f"unexpected regionRegex {regex!r}")
    parts = [[]]
    for piece in re.split(r"\\-", m.group(1)):
        alts = piece.strip("()").split("|")
        parts = [p + [a] for p in parts for a in alts]
    return sorted("-".join(p) for p in parts)


def main():
    with open(SOURCE) as f:
        data = json.load(f)
    out = {
        "source": f"botocore {botocore.__version__}, botocore/data/partitions.json",
        "partitions": [
            {
                "id": p["id"],
                "prefixes": prefixes(p["regionRegex"]),
                "regions": sorted(r for r in p.get("regions", {}) if not r.endswith("-global")),
            }
            for p in data["partitions"]
        ],
    }
    with open(OUT, "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
