"""The emulator through another client than the Rust SDK: boto3/botocore (Python), which
validates and parses by the official service model. Run by `make test`:

    .venv/bin/python tests/python/boto3_smoke.py target/debug/device-defender-emulator
"""
import json
import sys
import urllib.request

import boto3
from botocore.exceptions import ClientError

from emulator_process import running


def main(binary):
    with running(binary, 2000, 0.3) as (url, kw):
        iot, sns = boto3.client("iot", **kw), boto3.client("sns", **kw)
        checks = ["DEVICE_CERTIFICATE_EXPIRING_CHECK", "DEVICE_CERTIFICATE_AGE_CHECK", "LOGGING_DISABLED_CHECK"]

        described = iot.describe_account_audit_configuration()
        assert len(described["auditCheckConfigurations"]) == 17, described
        try:
            iot.delete_account_audit_configuration()
            raise AssertionError("expected ResourceNotFoundException")
        except ClientError as e:
            assert e.response["Error"]["Code"] == "ResourceNotFoundException", e.response
        topic = sns.create_topic(Name="audit")["TopicArn"]
        iot.update_account_audit_configuration(
            roleArn="arn:aws:iam::123456789012:role/audit",
            auditCheckConfigurations={c: {"enabled": True} for c in checks},
            auditNotificationTargetConfigurations={"SNS": {"targetArn": topic, "roleArn": "arn:aws:iam::123456789012:role/sns", "enabled": True}})
        # botocore sends "enabled": false explicitly: also a disable.
        iot.update_account_audit_configuration(auditCheckConfigurations={"LOGGING_DISABLED_CHECK": {"enabled": False}})
        enabled = [k for k, v in iot.describe_account_audit_configuration()["auditCheckConfigurations"].items() if v["enabled"]]
        assert sorted(enabled) == sorted(checks[:2]), enabled

        for i, (freq, extra) in enumerate([("DAILY", {}), ("WEEKLY", {"dayOfWeek": "MON"}), ("MONTHLY", {"dayOfMonth": "LAST"})]):
            iot.create_scheduled_audit(scheduledAuditName=f"a{i}", frequency=freq, targetCheckNames=checks[:2],
                                       tags=[{"Key": "team", "Value": "iot"}], **extra)
        try:
            iot.create_scheduled_audit(scheduledAuditName="a0", frequency="DAILY", targetCheckNames=checks[:1])
            raise AssertionError("expected ResourceAlreadyExistsException")
        except iot.exceptions.ResourceAlreadyExistsException as e:
            assert e.response["resourceId"] == "a0", e.response
        names = [a["scheduledAuditName"] for p in iot.get_paginator("list_scheduled_audits").paginate(PaginationConfig={"PageSize": 2})
                 for a in p["scheduledAudits"]]
        assert names == ["a0", "a1", "a2"], names

        task = iot.start_on_demand_audit_task(targetCheckNames=checks[:2])["taskId"]
        d = iot.describe_audit_task(taskId=task)
        assert d["taskStatus"] == "IN_PROGRESS" and d["taskStartTime"].year == 2026, d
        req = urllib.request.Request(url + "/_emulator/clock/advance", data=b'{"seconds": 10}', method="POST")
        urllib.request.urlopen(req).read()
        d = iot.describe_audit_task(taskId=task)
        assert d["taskStatus"] == "COMPLETED", d
        expected = sum(c["nonCompliantResourcesCount"] for c in d["auditDetails"].values())
        seen = set()
        for page in iot.get_paginator("list_audit_findings").paginate(taskId=task, PaginationConfig={"PageSize": 250}):
            for f in page["findings"]:
                seen.add(f["findingId"])
                assert f["findingTime"].year == 2026
        assert len(seen) == expected and expected > 250, (len(seen), expected)
        tasks = iot.list_audit_tasks(startTime="2026-01-14T00:00:00Z", endTime="2026-01-16T00:00:00Z")["tasks"]
        assert [t["taskId"] for t in tasks] == [task], tasks
        try:
            iot.cancel_audit_task(taskId=task)
            raise AssertionError("expected InvalidRequestException")
        except iot.exceptions.InvalidRequestException:
            pass
        try:
            iot.list_audit_findings(taskId=task, startTime="2026-01-14T00:00:00Z", endTime="2026-01-16T00:00:00Z")
            raise AssertionError("expected InvalidRequestException")
        except iot.exceptions.InvalidRequestException:
            pass

        # Audit finding suppressions (botocore fills clientRequestToken, an idempotency token).
        cert = next(f for p in iot.get_paginator("list_audit_findings").paginate(taskId=task, checkName=checks[0])
                    for f in p["findings"])["nonCompliantResource"]["resourceIdentifier"]
        iot.create_audit_suppression(checkName=checks[0], resourceIdentifier=cert, suppressIndefinitely=True,
                                     description="lab device, rotated in March")
        try:
            iot.create_audit_suppression(checkName=checks[0], resourceIdentifier=cert, suppressIndefinitely=True)
            raise AssertionError("expected ResourceAlreadyExistsException")
        except iot.exceptions.ResourceAlreadyExistsException:
            pass
        for n in range(5):
            iot.create_audit_suppression(checkName=checks[1], resourceIdentifier={"deviceCertificateId": f"{n:064x}"},
                                         expirationDate=f"2026-0{n + 2}-01T00:00:00Z")
        iot.update_audit_suppression(checkName=checks[0], resourceIdentifier=cert, description="reviewed")
        s = iot.describe_audit_suppression(checkName=checks[0], resourceIdentifier=cert)
        assert s["suppressIndefinitely"] is True and s["description"] == "reviewed", s
        listed = [x for p in iot.get_paginator("list_audit_suppressions").paginate(checkName=checks[1], PaginationConfig={"PageSize": 2})
                  for x in p["suppressions"]]
        assert [x["expirationDate"].month for x in listed] == [2, 3, 4, 5, 6], listed
        iot.delete_audit_suppression(checkName=checks[1], resourceIdentifier={"deviceCertificateId": f"{0:064x}"})
        try:
            iot.describe_audit_suppression(checkName=checks[1], resourceIdentifier={"deviceCertificateId": f"{0:064x}"})
            raise AssertionError("expected ResourceNotFoundException")
        except iot.exceptions.ResourceNotFoundException:
            pass
        second = iot.start_on_demand_audit_task(targetCheckNames=checks[:1])["taskId"]
        urllib.request.urlopen(urllib.request.Request(url + "/_emulator/clock/advance", data=b'{"seconds": 10}', method="POST")).read()
        muted = iot.list_audit_findings(taskId=second, listSuppressedFindings=True)["findings"]
        assert [f["nonCompliantResource"]["resourceIdentifier"] for f in muted] == [cert] and muted[0]["isSuppressed"], muted
        detail = iot.describe_audit_task(taskId=second)["auditDetails"][checks[0]]
        assert detail["suppressedNonCompliantResourcesCount"] == 1, detail

        outbox = json.load(urllib.request.urlopen(url + "/_emulator/outbox?source=audit"))
        message = json.loads(outbox["messages"][0]["message"])
        assert message["taskId"] == task and isinstance(message["taskStartTime"], int), message
        sns.publish(TopicArn=topic, Message="hello", Subject="s",
                    MessageAttributes={"CRITICAL": {"DataType": "Number", "StringValue": "3"}})
        assert len(sns.list_topics()["Topics"]) == 1

        # STS through botocore's query protocol: a role in another account, then that account's
        # own Device Defender with the temporary credentials.
        hub_sts = boto3.client("sts", **{**kw, "aws_access_key_id": "HUBKEY"})
        assert hub_sts.get_caller_identity()["Account"] == "111111111111"
        creds = hub_sts.assume_role(RoleArn="arn:aws:iam::222222222222:role/audit-reader", RoleSessionName="hub")["Credentials"]
        assumed = dict(kw, aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
                       aws_session_token=creds["SessionToken"], region_name="eu-west-1")
        who = boto3.client("sts", **assumed).get_caller_identity()
        assert who["Account"] == "222222222222" and who["Arn"].endswith(":assumed-role/audit-reader/hub"), who
        member_cfg = boto3.client("iot", **assumed).describe_account_audit_configuration()
        assert not any(c["enabled"] for c in member_cfg["auditCheckConfigurations"].values()), "the member's own configuration"
        try:
            boto3.client("sts", **kw).assume_role(RoleArn="arn:aws:iam::222222222222:role/audit-reader", RoleSessionName="x1")
            raise AssertionError("expected AccessDenied")
        except ClientError as e:
            assert e.response["Error"]["Code"] == "AccessDenied", e.response
        print(f"boto3 smoke test: ok ({expected} findings paged, {len(names)} audits listed, {len(listed)} suppressions listed, STS)")


if __name__ == "__main__":
    main(sys.argv[1])
