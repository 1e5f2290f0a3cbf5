"""The emulator's SNS, SQS, STS, Organizations (ListAccounts) and the IoT operations around
audits (DescribeAuditFinding, tags) through boto3/botocore, which validates and parses by the
official service models.
Run by `make boto3-smoke`:

    .venv/bin/python tests/python/emulator_services.py target/debug/device-defender-emulator

MD5OfMessageAttributes is checked against an implementation of its documented algorithm
written here, independently of the emulator's (botocore itself does not check it).
"""
import hashlib
import json
import struct
import sys
import urllib.request

import boto3
from botocore.exceptions import ClientError, ParamValidationError

from emulator_process import running

START_MS = 1768435200000  # 2026-01-15T00:00:00Z, the frozen clock's start


def md5_of_message_attributes(attributes):
    """SQS developer guide, "Calculating the MD5 message digest for message attributes"."""
    buf = b""
    for name in sorted(attributes):
        a = attributes[name]
        for part in (name.encode(), a["DataType"].encode()):
            buf += struct.pack(">I", len(part)) + part
        if "StringValue" in a:
            value = a["StringValue"].encode()
            buf += b"\x01" + struct.pack(">I", len(value)) + value
        else:
            buf += b"\x02" + struct.pack(">I", len(a["BinaryValue"])) + a["BinaryValue"]
    return hashlib.md5(buf).hexdigest()


def expect_error(code, call, *args, **kwargs):
    try:
        call(*args, **kwargs)
    except ClientError as e:
        assert e.response["Error"]["Code"] == code, (code, e.response)
        return e
    raise AssertionError(f"expected {code}")


def admin(url, path, body=None, method=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url + "/_emulator/" + path, data=data, method=method or ("GET" if body is None else "POST"))
    return json.load(urllib.request.urlopen(req))


def sns_topics_and_subscriptions(url, sns, sqs):
    arn = sns.create_topic(Name="digest", Attributes={"DisplayName": "Audits"})["TopicArn"]
    assert sns.create_topic(Name="digest", Attributes={"DisplayName": "Audits"})["TopicArn"] == arn
    e = expect_error("InvalidParameter", sns.create_topic, Name="digest", Attributes={"DisplayName": "Other"})
    assert "Topic already exists with different attributes" in e.response["Error"]["Message"], e.response
    attrs = sns.get_topic_attributes(TopicArn=arn)["Attributes"]
    policy = json.loads(attrs["Policy"])
    assert policy["Statement"][0]["Resource"] == arn and attrs["Owner"] == "123456789012", attrs
    assert attrs["DisplayName"] == "Audits" and "defaultHealthyRetryPolicy" in attrs["EffectiveDeliveryPolicy"], attrs
    sns.set_topic_attributes(TopicArn=arn, AttributeName="DisplayName", AttributeValue="Device Defender")
    assert sns.get_topic_attributes(TopicArn=arn)["Attributes"]["DisplayName"] == "Device Defender"

    # An e-mail subscription waits for its confirmation; the emulator shows the token.
    assert sns.subscribe(TopicArn=arn, Protocol="email", Endpoint="ops@example.com")["SubscriptionArn"] == "pending confirmation"
    listed = sns.list_subscriptions_by_topic(TopicArn=arn)["Subscriptions"]
    assert [s["SubscriptionArn"] for s in listed] == ["PendingConfirmation"], listed
    token = next(s["pendingToken"] for s in admin(url, "subscriptions")["subscriptions"] if s["endpoint"] == "ops@example.com")
    confirmed = sns.confirm_subscription(TopicArn=arn, Token=token)["SubscriptionArn"]
    sub = sns.get_subscription_attributes(SubscriptionArn=confirmed)["Attributes"]
    assert sub["PendingConfirmation"] == "false" and sub["Protocol"] == "email", sub
    https = sns.subscribe(TopicArn=arn, Protocol="https", Endpoint="https://example.com/hook", ReturnSubscriptionArn=True)
    assert https["SubscriptionArn"].startswith(arn + ":"), https
    assert sns.get_topic_attributes(TopicArn=arn)["Attributes"]["SubscriptionsPending"] == "1"
    admin(url, "subscriptions/confirm", {"subscriptionArn": https["SubscriptionArn"]})
    assert sns.get_topic_attributes(TopicArn=arn)["Attributes"]["SubscriptionsConfirmed"] == "2"

    # Raw delivery to one queue, SNS's envelope to the other.
    raw_url = sqs.create_queue(QueueName="raw")["QueueUrl"]
    wrapped_url = sqs.create_queue(QueueName="wrapped")["QueueUrl"]
    arn_of = lambda q: sqs.get_queue_attributes(QueueUrl=q, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    raw_sub = sns.subscribe(TopicArn=arn, Protocol="sqs", Endpoint=arn_of(raw_url),
                            Attributes={"RawMessageDelivery": "true"})["SubscriptionArn"]
    wrapped_sub = sns.subscribe(TopicArn=arn, Protocol="sqs", Endpoint=arn_of(wrapped_url))["SubscriptionArn"]
    assert sns.get_subscription_attributes(SubscriptionArn=raw_sub)["Attributes"]["RawMessageDelivery"] == "true"
    assert sns.get_subscription_attributes(SubscriptionArn=wrapped_sub)["Attributes"]["RawMessageDelivery"] == "false"
    lambda_sub = sns.subscribe(TopicArn=arn, Protocol="lambda",
                               Endpoint="arn:aws:lambda:us-east-1:123456789012:function:f")["SubscriptionArn"]
    expect_error("InvalidParameter", sns.set_subscription_attributes, SubscriptionArn=lambda_sub,
                 AttributeName="RawMessageDelivery", AttributeValue="true")
    sns.publish(TopicArn=arn, Message="3 new CRITICAL", MessageAttributes={"severity": {"DataType": "String", "StringValue": "CRITICAL"}})
    got = sqs.receive_message(QueueUrl=raw_url, MessageAttributeNames=["All"])["Messages"][0]
    assert got["Body"] == "3 new CRITICAL", got
    assert got["MessageAttributes"] == {"severity": {"DataType": "String", "StringValue": "CRITICAL"}}, got
    assert got["MD5OfMessageAttributes"] == md5_of_message_attributes(got["MessageAttributes"]), got
    envelope = json.loads(sqs.receive_message(QueueUrl=wrapped_url)["Messages"][0]["Body"])
    assert envelope["Type"] == "Notification" and envelope["Message"] == "3 new CRITICAL", envelope
    sns.unsubscribe(SubscriptionArn=lambda_sub)
    assert sns.get_topic_attributes(TopicArn=arn)["Attributes"]["SubscriptionsDeleted"] == "1"


def sqs_messages_and_batches(sqs):
    url = sqs.create_queue(QueueName="work", Attributes={"VisibilityTimeout": "45"})["QueueUrl"]
    assert sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["VisibilityTimeout"])["Attributes"] == {"VisibilityTimeout": "45"}
    every = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert every["CreatedTimestamp"] == str(START_MS // 1000) and every["ApproximateNumberOfMessages"] == "0", every
    expect_error("QueueNameExists", sqs.create_queue, QueueName="work", Attributes={"VisibilityTimeout": "5"})

    attributes = {"trace": {"DataType": "String", "StringValue": "abc"},
                  "count": {"DataType": "Number", "StringValue": "3"},
                  "blob": {"DataType": "Binary", "BinaryValue": b"\x00\x01binary"}}
    sent = sqs.send_message(QueueUrl=url, MessageBody="one", MessageAttributes=attributes)
    assert sent["MD5OfMessageAttributes"] == md5_of_message_attributes(attributes), sent
    assert sent["MD5OfMessageBody"] == hashlib.md5(b"one").hexdigest()
    plain = sqs.receive_message(QueueUrl=url, VisibilityTimeout=0)["Messages"][0]
    assert "Attributes" not in plain and "MessageAttributes" not in plain, plain
    asked = sqs.receive_message(QueueUrl=url, MessageSystemAttributeNames=["SentTimestamp", "ApproximateReceiveCount"],
                                MessageAttributeNames=["trace", "blob"])["Messages"][0]
    assert asked["Attributes"] == {"SentTimestamp": str(START_MS), "ApproximateReceiveCount": "2"}, asked
    assert set(asked["MessageAttributes"]) == {"trace", "blob"}, asked
    assert asked["MessageAttributes"]["blob"]["BinaryValue"] == b"\x00\x01binary"
    assert asked["MD5OfMessageAttributes"] == md5_of_message_attributes(asked["MessageAttributes"]), asked
    sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=asked["ReceiptHandle"], VisibilityTimeout=0)
    again = sqs.receive_message(QueueUrl=url)["Messages"][0]
    sqs.delete_message(QueueUrl=url, ReceiptHandle=again["ReceiptHandle"])
    expect_error("ReceiptHandleIsInvalid", sqs.change_message_visibility, QueueUrl=url,
                 ReceiptHandle=again["ReceiptHandle"], VisibilityTimeout=0)

    batch = sqs.send_message_batch(QueueUrl=url, Entries=[
        {"Id": "a", "MessageBody": "first"},
        {"Id": "b", "MessageBody": "late", "DelaySeconds": 901},
        {"Id": "c", "MessageBody": "third", "MessageAttributes": {"k": {"DataType": "String", "StringValue": "v"}}},
    ])
    assert [e["Id"] for e in batch["Successful"]] == ["a", "c"], batch
    assert batch["Failed"][0]["Id"] == "b" and batch["Failed"][0]["SenderFault"], batch
    assert batch["Successful"][1]["MD5OfMessageAttributes"] == md5_of_message_attributes({"k": {"DataType": "String", "StringValue": "v"}})
    expect_error("TooManyEntriesInBatchRequest", sqs.send_message_batch, QueueUrl=url,
                 Entries=[{"Id": f"m{i}", "MessageBody": "x"} for i in range(11)])
    expect_error("BatchEntryIdsNotDistinct", sqs.send_message_batch, QueueUrl=url,
                 Entries=[{"Id": "a", "MessageBody": "x"}, {"Id": "a", "MessageBody": "y"}])
    expect_error("InvalidBatchEntryId", sqs.send_message_batch, QueueUrl=url, Entries=[{"Id": "no spaces", "MessageBody": "x"}])
    expect_error("EmptyBatchRequest", sqs.delete_message_batch, QueueUrl=url, Entries=[])
    received = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    deleted = sqs.delete_message_batch(QueueUrl=url, Entries=[{"Id": f"d{i}", "ReceiptHandle": m["ReceiptHandle"]}
                                                              for i, m in enumerate(received)] + [{"Id": "bad", "ReceiptHandle": "nope"}])
    assert len(deleted["Successful"]) == 2 and deleted["Failed"][0]["Code"] == "ReceiptHandleIsInvalid", deleted
    sqs.delete_queue(QueueUrl=url)
    expect_error("QueueDoesNotExist", sqs.get_queue_attributes, QueueUrl=url, AttributeNames=["All"])


def iot_findings_and_tags(url, iot):
    checks = ["DEVICE_CERTIFICATE_EXPIRING_CHECK", "LOGGING_DISABLED_CHECK"]
    iot.update_account_audit_configuration(roleArn="arn:aws:iam::123456789012:role/audit",
                                           auditCheckConfigurations={c: {"enabled": True} for c in checks})
    arn = iot.create_scheduled_audit(scheduledAuditName="daily", frequency="DAILY", targetCheckNames=checks,
                                     tags=[{"Key": "team", "Value": "iot"}])["scheduledAuditArn"]
    assert iot.list_tags_for_resource(resourceArn=arn)["tags"] == [{"Key": "team", "Value": "iot"}]
    iot.tag_resource(resourceArn=arn, tags=[{"Key": "tier", "Value": "prod"}])
    iot.untag_resource(resourceArn=arn, tagKeys=["team"])
    assert iot.list_tags_for_resource(resourceArn=arn)["tags"] == [{"Key": "tier", "Value": "prod"}]
    expect_error("ResourceNotFoundException", iot.list_tags_for_resource, resourceArn=arn.replace("daily", "nope"))
    expect_error("LimitExceededException", iot.tag_resource, resourceArn=arn,
                 tags=[{"Key": f"k{i}", "Value": "v"} for i in range(50)])

    task = iot.start_on_demand_audit_task(targetCheckNames=checks)["taskId"]
    urllib.request.urlopen(urllib.request.Request(url + "/_emulator/clock/advance", data=b'{"seconds": 10}', method="POST")).read()
    listed = iot.list_audit_findings(taskId=task, maxResults=25)["findings"]
    for f in listed:
        assert iot.describe_audit_finding(findingId=f["findingId"])["finding"] == f
    expect_error("ResourceNotFoundException", iot.describe_audit_finding, findingId="0" * 42)
    return len(listed)


def organizations_list_accounts(url, kw, member_kw):
    """ListAccounts as the roll-up calls it: the management account (the default key's
    123456789012) lists every member; another member is refused; leaving and states show."""
    org = boto3.client("organizations", **kw)
    accounts = org.list_accounts()["Accounts"]
    assert [a["Id"] for a in accounts] == ["111111111111", "123456789012", "222222222222"], accounts
    hub = next(a for a in accounts if a["Id"] == "111111111111")
    assert hub["Arn"] == "arn:aws:organizations::123456789012:account/o-emulator000/111111111111", hub
    assert (hub["State"], hub["Status"], hub["JoinedMethod"]) == ("ACTIVE", "ACTIVE", "CREATED"), hub
    assert hub["JoinedTimestamp"].timestamp() == START_MS / 1000, hub
    pages = list(org.get_paginator("list_accounts").paginate(PaginationConfig={"PageSize": 1}))
    assert [p["Accounts"][0]["Id"] for p in pages] == [a["Id"] for a in accounts], pages
    try:  # botocore checks the model's minimum itself; the emulator answers the maximum
        org.list_accounts(MaxResults=0)
        raise AssertionError("MaxResults=0 was sent")
    except ParamValidationError:
        pass
    e = expect_error("InvalidInputException", org.list_accounts, MaxResults=21)
    assert e.response["Reason"] == "MAX_VALUE_EXCEEDED", e.response
    expect_error("InvalidInputException", org.list_accounts, NextToken="not-a-token")
    e = expect_error("AccessDeniedException", boto3.client("organizations", **{**kw, "aws_access_key_id": "HUBKEY"}).list_accounts)
    assert e.response["Error"]["Message"] == "You don't have permissions to access this resource.", e.response

    admin(url, "organization/accounts/111111111111/state", {"state": "CLOSED"})
    admin(url, "organization/accounts/222222222222", method="DELETE")
    accounts = org.list_accounts()["Accounts"]
    assert [(a["Id"], a["State"], a["Status"]) for a in accounts] == [
        ("111111111111", "CLOSED", "SUSPENDED"), ("123456789012", "ACTIVE", "ACTIVE")], accounts
    # The member role's session still works (STS), but its account is in no organization now.
    assert boto3.client("sts", **member_kw).get_caller_identity()["Account"] == "222222222222"
    expect_error("AWSOrganizationsNotInUseException", boto3.client("organizations", **member_kw).list_accounts)
    assert admin(url, "organization")["departed"] == ["222222222222"]


def main(binary):
    with running(binary, 500, 0.2) as (url, kw):
        sns, sqs, iot = boto3.client("sns", **kw), boto3.client("sqs", **kw), boto3.client("iot", **kw)
        sns_topics_and_subscriptions(url, sns, sqs)
        sqs_messages_and_batches(sqs)
        described = iot_findings_and_tags(url, iot)

        # STS: an assumed role's UserId is its role id and session name.
        hub = boto3.client("sts", **{**kw, "aws_access_key_id": "HUBKEY"})
        assumed = hub.assume_role(RoleArn="arn:aws:iam::222222222222:role/audit-reader", RoleSessionName="hub")
        creds = assumed["Credentials"]
        member_kw = {**kw, "aws_access_key_id": creds["AccessKeyId"], "aws_secret_access_key": creds["SecretAccessKey"],
                     "aws_session_token": creds["SessionToken"]}
        who = boto3.client("sts", **member_kw).get_caller_identity()
        assert who["UserId"] == assumed["AssumedRoleUser"]["AssumedRoleId"], who
        assert who["UserId"].startswith("AROA") and who["UserId"].endswith(":hub"), who
        assert who["Arn"] == "arn:aws:sts::222222222222:assumed-role/audit-reader/hub", who
        organizations_list_accounts(url, kw, member_kw)
        print(f"emulator services (boto3): ok (SNS attributes, confirmation, raw delivery; SQS attributes, MD5, batches; "
              f"{described} findings described; tags; STS UserId; Organizations ListAccounts)")


if __name__ == "__main__":
    main(sys.argv[1])
