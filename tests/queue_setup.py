"""Sets up, in moto, a queue that receives trail buckets' object-created notifications.

Used by the `sqs` source's end-to-end tests (tests/it/queue.rs): the Rust tests use the SDK
crates the tool already builds (S3, SQS); SNS and EventBridge are set up here with boto3, which
the test venv has with moto.

    python tests/queue_setup.py ENDPOINT REGION QUEUE MAX_RECEIVES BUCKET:VIA...

VIA is `direct` (the bucket notifies the queue), `sns` (the bucket notifies a topic the queue
subscribes to, without raw delivery) or `eventbridge` (the bucket sends its events to
EventBridge, and a rule on `Object Created` targets the queue). The queue gets a dead-letter
queue after MAX_RECEIVES receives. Prints {"queue": URL, "dlq": URL}.
"""

import json
import sys

import boto3


def main():
    endpoint, region, name, max_receives, *buckets = sys.argv[1:]
    kw = dict(
        endpoint_url=endpoint,
        region_name=region,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    sqs = boto3.client("sqs", **kw)
    s3 = boto3.client("s3", **kw)
    dlq = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    queue = sqs.create_queue(
        QueueName=name,
        Attributes={
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receives}),
        },
    )["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    for spec in buckets:
        bucket, via = spec.split(":")
        if via == "direct":
            s3.put_bucket_notification_configuration(
                Bucket=bucket,
                NotificationConfiguration={
                    "QueueConfigurations": [{"QueueArn": arn, "Events": ["s3:ObjectCreated:*"]}]
                },
            )
        elif via == "sns":
            sns = boto3.client("sns", **kw)
            topic = sns.create_topic(Name=f"{name}-{bucket}")["TopicArn"]
            sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)
            s3.put_bucket_notification_configuration(
                Bucket=bucket,
                NotificationConfiguration={
                    "TopicConfigurations": [{"TopicArn": topic, "Events": ["s3:ObjectCreated:*"]}]
                },
            )
        elif via == "eventbridge":
            events = boto3.client("events", **kw)
            s3.put_bucket_notification_configuration(
                Bucket=bucket, NotificationConfiguration={"EventBridgeConfiguration": {}}
            )
            rule = f"{name}-{bucket}"
            events.put_rule(
                Name=rule,
                EventPattern=json.dumps(
                    {
                        "source": ["aws.s3"],
                        "detail-type": ["Object Created"],
                        "detail": {"bucket": {"name": [bucket]}},
                    }
                ),
            )
            events.put_targets(Rule=rule, Targets=[{"Id": "queue", "Arn": arn}])
        else:
            raise SystemExit(f"queue_setup.py: unknown way {via!r}")
    json.dump({"queue": queue, "dlq": dlq}, sys.stdout)


if __name__ == "__main__":
    main()
