#!/usr/bin/env python3
"""An organization trail in a loopback S3 (moto server), read by `correlator run` as the
scheduled task reads it (issue 15 item 8): a first run over a backlog, then 15-minute runs
that each find three new objects per folder.

    .venv/bin/python benches/org_trail.py --correlator target/release/correlator \
        --accounts 50 --regions 17 --hours 2

Starts moto from the venv (`tests/run.sh` installs it) and writes, for `--accounts` accounts
x `--regions` regions of an organization trail (`AWSLogs/o-exampleorg1/ACCOUNT/CloudTrail/
REGION/…`), one gzip log object per folder every 5 minutes over `--hours` hours. The first
`--busy` regions of each account are its working regions: their objects hold
`--busy-records` records, the others `--idle-records` (CloudTrail writes an object for a
region only when something was called there; idle regions see a few service calls). The
records are the shape of `fixtures/cloudtrail/single-record.json`, read-only calls no rule
takes, with request ids of their own so that objects compress as real ones do: what is
measured is listing, fetching and decoding, not matching.

Then runs, each under `/usr/bin/time -v` with the trail source only (`aws.sources =
cloudtrail_s3`, the stdout sink):

- `backlog`: a fresh state over the whole backlog (the first run of a deployment);
- `15 min` x `--steps`: three more objects per folder (15 minutes of deliveries), then a run
  with the state the run before saved: the steady state of the schedule.

With `--via sqs` the bucket notifies an SQS queue of each object it creates (S3 event
notifications, in moto) and the runs read the trail through the `sqs` source instead of
listing it (`aws.queue_max_messages` raised so that the backlog is read in one run; the
default, 20,000, would leave the rest to the next run).

For each: objects and records read, API calls (from the run's JSON summary), wall and CPU
seconds (user + system of the correlator), peak RSS, and the state's size. Then a
projection of one 15-minute run to `--project-accounts` accounts (default 200) x the same
regions: calls grow with the folders (one listing and three objects each per run), CPU with
the records. Wall time against moto is moto's (one Python process answering every call), not
S3's: the projection gives the calls and the correlator's CPU, not a wall time. A
measurement, not a test: nothing here passes or fails.
"""

import argparse
import gzip
import json
import os
import pathlib
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from trail_memory import ROOT, read_only_call, run_correlator, s3_client, start_moto  # noqa: E402

REGIONS = [
    "us-east-1", "eu-west-1", "us-west-2", "us-east-2", "us-west-1", "eu-west-2", "eu-west-3",
    "eu-central-1", "eu-north-1", "ap-south-1", "ap-northeast-1", "ap-northeast-2",
    "ap-northeast-3", "ap-southeast-1", "ap-southeast-2", "ca-central-1", "sa-east-1",
]
START = 1746316800  # 2025-05-04T00:00:00Z


def record_maker():
    template = json.loads((ROOT / "fixtures/cloudtrail/single-record.json").read_text())
    n = [0]

    def make(account, region, when):
        n[0] += 1
        return read_only_call(template, f"{n[0]:08x}-0000-4000-8000-{account}", account, region, when)

    return make


def put_slot(s3, bucket, args, accounts, regions, slot, make):
    """One object per folder for the 5-minute slot `slot`: (objects, records, JSON bytes)."""
    t = time.gmtime(START + slot * 300)
    stamp = time.strftime("%Y%m%dT%H%MZ", t)
    day = time.strftime("%Y/%m/%d", t)
    when = time.strftime("%Y-%m-%dT%H:%M:%SZ", t)
    objects = records = size = 0
    for account in accounts:
        for i, region in enumerate(regions):
            count = args.busy_records if i < args.busy else args.idle_records
            text = json.dumps(
                {"Records": [make(account, region, when) for _ in range(count)]}
            ).encode()
            key = (
                f"AWSLogs/o-exampleorg1/{account}/CloudTrail/{region}/{day}/"
                f"{account}_CloudTrail_{region}_{stamp}_{os.urandom(4).hex()}.json.gz"
            )
            s3.put_object(Bucket=bucket, Key=key, Body=gzip.compress(text, 6))
            objects += 1
            records += count
            size += len(text)
    return objects, records, size


def notify_queue(url, bucket):
    """A queue the bucket's object-created notifications go to (its URL); S3's test event
    comes first, and the runs pass it over."""
    import boto3

    kw = dict(
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    sqs = boto3.client("sqs", **kw)
    queue = sqs.create_queue(QueueName="org-trail")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    boto3.client("s3", **kw).put_bucket_notification_configuration(
        Bucket=bucket,
        NotificationConfiguration={
            "QueueConfigurations": [{"QueueArn": arn, "Events": ["s3:ObjectCreated:*"]}]
        },
    )
    return queue


def run(args, url, bucket, state, queue):
    extra = None
    if queue:
        extra = {
            "CORRELATOR_AWS_SOURCES": "sqs",
            "CORRELATOR_AWS_QUEUE": queue,
            "CORRELATOR_AWS_QUEUE_MAX_MESSAGES": "1000000",
        }
    out, wall, rss, summary = run_correlator(args.correlator, url, bucket, state, extra)
    if out.returncode != 0:
        print(out.stderr[-3000:], file=sys.stderr)
        sys.exit(f"correlator run exited with {out.returncode}")

    def timed(label):
        line = next(x for x in out.stderr.splitlines() if label in x)
        return float(line.rsplit(":", 1)[1].strip())

    source = "sqs" if queue else "cloudtrail_s3"
    trail = next((s for s in summary.get("sources", []) if s.get("source") == source), {})
    return {
        "objects": summary.get("queue" if queue else "trail", {}).get("objects", 0),
        "records": trail.get("records", 0),
        # The queue's deletions come after its source line: its own count has them.
        "calls": summary["queue"]["calls"] if queue else trail.get("calls", 0),
        "wall": wall,
        "cpu": timed("User time (seconds)") + timed("System time (seconds)"),
        "rss": rss,
        "state": state.stat().st_size if state.exists() else 0,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--correlator", default=str(ROOT / "target/release/correlator"))
    ap.add_argument("--accounts", type=int, default=50)
    ap.add_argument("--regions", type=int, default=17, choices=range(1, len(REGIONS) + 1))
    ap.add_argument("--hours", type=float, default=2.0)
    ap.add_argument("--busy", type=int, default=2, help="working regions per account")
    ap.add_argument("--busy-records", type=int, default=200)
    ap.add_argument("--idle-records", type=int, default=5)
    ap.add_argument("--steps", type=int, default=2, help="15-minute runs after the backlog")
    ap.add_argument("--project-accounts", type=int, default=200)
    ap.add_argument(
        "--via", choices=["listing", "sqs"], default="listing",
        help="read the trail by listing it, or through the queue its notifications go to",
    )
    args = ap.parse_args()
    accounts = [f"3{i:011d}" for i in range(args.accounts)]
    regions = REGIONS[: args.regions]
    folders = len(accounts) * len(regions)
    make = record_maker()
    moto, url = start_moto()
    try:
        s3 = s3_client(url)
        bucket = "org-trail"
        s3.create_bucket(Bucket=bucket)
        queue = None
        if args.via == "sqs":
            queue = notify_queue(url, bucket)
        slots = int(args.hours * 12)
        t = time.time()
        objects = records = size = 0
        for slot in range(slots):
            o, r, b = put_slot(s3, bucket, args, accounts, regions, slot, make)
            objects, records, size = objects + o, records + r, size + b
        print(
            f"read by {args.via}; "
            f"{args.accounts} accounts x {len(regions)} regions = {folders} folders; "
            f"{args.busy} working region(s) per account at {args.busy_records} records per "
            f"object, the others at {args.idle_records}; backlog of {args.hours} h: "
            f"{objects} objects, {records} records, {size / 1e6:.0f} MB of JSON "
            f"(written in {time.time() - t:.0f} s)"
        )
        print(
            f"{'run':>8} {'objects':>8} {'records':>9} {'calls':>6} {'wall s':>7} "
            f"{'CPU s':>6} {'peak RSS MB':>11} {'state KB':>9}"
        )
        rows = []
        with tempfile.TemporaryDirectory() as tmp:
            state = pathlib.Path(tmp) / "state.json"
            for step in range(args.steps + 1):
                if step > 0:
                    for k in range(3):
                        put_slot(s3, bucket, args, accounts, regions, slots, make)
                        slots += 1
                m = run(args, url, bucket, state, queue)
                name = "backlog" if step == 0 else f"15 min"
                rows.append((name, m))
                print(
                    f"{name:>8} {m['objects']:>8} {m['records']:>9} {m['calls']:>6} "
                    f"{m['wall']:>7.1f} {m['cpu']:>6.2f} {m['rss']:>11} {m['state'] / 1e3:>9.0f}"
                )
        steady = [m for name, m in rows if name != "backlog"]
        if steady:
            cpu = sum(m["cpu"] for m in steady) / len(steady)
            calls = sum(m["calls"] for m in steady) / len(steady)
            per_folder_calls = calls / folders
            scale = args.project_accounts / args.accounts
            print(
                f"projection of one 15-minute run to {args.project_accounts} accounts x "
                f"{len(regions)} regions ({args.project_accounts * len(regions)} folders), "
                f"linear in folders and records from the 15-minute runs above: "
                f"{per_folder_calls * folders * scale:.0f} calls "
                f"({per_folder_calls:.2f} per folder), {cpu * scale:.1f} s of correlator CPU "
                f"(wall depends on S3's latency: calls / aws.trail_concurrency x latency), "
                f"{records / max(1, objects) * 3 * folders * scale / 1e3:.0f} k records "
                f"per run, {records / max(1, objects) * 288 * folders * scale / 1e6:.1f} M "
                f"a day"
            )
    finally:
        moto.kill()
        moto.wait()


if __name__ == "__main__":
    main()
