#!/usr/bin/env python3
"""Peak memory of `correlator run` reading an organization trail of N objects from a loopback
S3 (moto server), and the size of the state it saves per account and region folder.

    .venv/bin/python benches/trail_memory.py --correlator target/debug/correlator \
        --objects 100 400 --records 2000

Starts moto from the venv (`tests/run.sh` installs it), writes N gzip log objects of
`--records` CloudTrail records each (the record of fixtures/cloudtrail/single-record.json with
ids and times of their own, made a read-only S3 call of an IAM user: a call no rule takes,
so that what is measured is reading, not the signals matching keeps, which grow with the
records selected until issue 15 item 6) over 10 accounts x 4 regions, five minutes apart per folder, and
runs `correlator run` over them with a fresh state under `/usr/bin/time -v`. Prints one line
per size: objects, MB of JSON, API calls, wall seconds, peak RSS, and the state's bytes per
folder checkpoint. A measurement, not a test: nothing here passes or fails.
"""

import argparse
import gzip
import json
import os
import pathlib
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = pathlib.Path(__file__).resolve().parent.parent
ACCOUNTS = [f"1000000000{i:02}" for i in range(10)]
REGIONS = ["us-east-1", "eu-west-1", "ap-south-1", "sa-east-1"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_moto():
    port = free_port()
    moto = subprocess.Popen(
        [str(ROOT / ".venv/bin/moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            urllib.request.urlopen(url + "/moto-api/")
            return moto, url
        except OSError:
            time.sleep(0.1)
    moto.kill()
    sys.exit("moto server did not start")


def s3_client(url):
    """A boto3 S3 client for the moto server at `url`."""
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def read_only_call(template, event_id, account, region, when):
    """A record of `template`'s shape made an IAM user's `ListBuckets` (a call no rule takes)
    in `account` and `region` at `when`, with request ids of its own."""
    r = dict(template)
    r["eventID"] = event_id
    r["eventTime"] = when
    r["recipientAccountId"] = account
    r["awsRegion"] = region
    r["eventSource"] = "s3.amazonaws.com"
    r["eventName"] = "ListBuckets"
    r["userIdentity"] = {
        "type": "IAMUser",
        "principalId": "AIDAEXAMPLEREADER001",
        "arn": f"arn:aws:iam::{account}:user/reader",
        "accountId": account,
        "accessKeyId": "AKIAEXAMPLEREADER001",
        "userName": "reader",
    }
    r.pop("requestParameters", None)
    r.pop("responseElements", None)
    # What differs between real records (request ids, addresses), so that objects compress
    # about as CloudTrail's do, not to almost nothing.
    r["requestID"] = os.urandom(24).hex()
    r["sharedEventID"] = os.urandom(24).hex()
    return r


def objects(n, records):
    """(key, gzip body, JSON bytes) of n log objects spread over the folders."""
    template = json.loads((ROOT / "fixtures/cloudtrail/single-record.json").read_text())
    folders = [(a, r) for a in ACCOUNTS for r in REGIONS]
    for i in range(n):
        account, region = folders[i % len(folders)]
        minute = (i // len(folders)) * 5
        t = time.gmtime(1746316800 + minute * 60)  # 2025-05-04T00:00:00Z on
        stamp = time.strftime("%Y%m%dT%H%MZ", t)
        day = time.strftime("%Y/%m/%d", t)
        rs = []
        for j in range(records):
            when = time.strftime("%Y-%m-%dT%H:%M:%SZ", t)
            rs.append(read_only_call(template, f"{i:08x}-0000-4000-8000-{j:012x}", account, region, when))
        text = json.dumps({"Records": rs}).encode()
        key = (
            f"AWSLogs/o-exampleorg1/{account}/CloudTrail/{region}/{day}/"
            f"{account}_CloudTrail_{region}_{stamp}_{i:06d}.json.gz"
        )
        yield key, gzip.compress(text, 6), len(text)


def run_correlator(correlator, url, bucket, state, extra=None):
    """`correlator run` of the trail source only over `bucket`'s trail in moto at `url`, with
    the state `state`, under `/usr/bin/time -v`: the finished process, its wall seconds, its
    peak RSS in MB and its JSON summary (the last JSON line of its standard error). `extra`:
    more environment (another source)."""
    env = dict(
        os.environ,
        AWS_ENDPOINT_URL=url,
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_REGION="us-east-1",
        AWS_EC2_METADATA_DISABLED="true",
        CORRELATOR_AWS_REGIONS="us-east-1",
        CORRELATOR_AWS_SOURCES="cloudtrail_s3",
        CORRELATOR_AWS_TRAIL=f"s3://{bucket}/AWSLogs/",
        CORRELATOR_AWS_SINK="stdout",
        CORRELATOR_AWS_LOOKBACK="1000d",
        CORRELATOR_STATE=str(state),
    )
    env.update(extra or {})
    started = time.time()
    out = subprocess.run(
        ["/usr/bin/time", "-v", correlator, "run", "--summary", "json"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    wall = time.time() - started
    rss = next(
        int(line.split(":")[1]) // 1024
        for line in out.stderr.splitlines()
        if "Maximum resident set size" in line
    )
    summary = {}
    for line in out.stderr.splitlines():
        if line.startswith("{"):
            try:
                summary = json.loads(line)
            except ValueError:
                pass
    return out, wall, rss, summary


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--correlator", default=str(ROOT / "target/debug/correlator"))
    ap.add_argument("--objects", type=int, nargs="+", default=[100, 400])
    ap.add_argument("--records", type=int, default=2000)
    args = ap.parse_args()
    moto, url = start_moto()
    try:
        s3 = s3_client(url)
        print(f"{'objects':>8} {'MB JSON':>8} {'MB gzip':>8} {'calls':>6} {'wall s':>7} {'peak RSS MB':>12} {'state B/folder':>15}")
        for n in args.objects:
            bucket = f"trail-memory-{n}"
            s3.create_bucket(Bucket=bucket)
            size = packed = 0
            for key, body, text in objects(n, args.records):
                s3.put_object(Bucket=bucket, Key=key, Body=body)
                size += text
                packed += len(body)
            with tempfile.TemporaryDirectory() as tmp:
                state = pathlib.Path(tmp) / "state.json"
                out, wall, rss, summary = run_correlator(args.correlator, url, bucket, state)
                calls = sum(s.get("calls", 0) for s in summary.get("sources", []))
                raw = state.read_bytes() if state.exists() else b"{}"
                if raw[:4] == b"\x50\x2a\x4d\x18":  # zstd after its header frame (version 10 on)
                    raw = subprocess.run(["zstd", "-dc"], input=raw, capture_output=True,
                                         check=True).stdout
                elif raw[:2] == b"\x1f\x8b":  # gzip-compressed (state versions 7 to 9)
                    raw = gzip.decompress(raw)
                doc = json.loads(raw)
                folders = [
                    v for k, v in doc.get("checkpoints", {}).items()
                    if k.startswith("aws/cloudtrail_s3/")
                ]
                per_folder = (
                    sum(len(json.dumps({k: v})) for k, v in doc["checkpoints"].items()
                        if k.startswith("aws/cloudtrail_s3/")) // len(folders)
                    if folders else 0
                )
                if out.returncode != 0:
                    print(out.stderr[-2000:], file=sys.stderr)
                print(f"{n:>8} {size / 1e6:>8.0f} {packed / 1e6:>8.0f} {calls:>6} {wall:>7.1f} {rss:>12} {per_folder:>15}")
    finally:
        moto.kill()
        moto.wait()


if __name__ == "__main__":
    main()
