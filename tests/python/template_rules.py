"""The deploy rules of template.yaml, checked on what CloudFormation would really receive.

The template is expanded with the SAM translator (the same one `sam deploy` uses), so the roles,
permissions, subscriptions and schedules SAM generates are checked too. Each rule is one that
AWS enforces only at run time in a real account (an alarm whose mail never arrives, a dead-letter
queue nobody may write to); docs/deploy-review.md gives the source of each.

    python tests/python/template_rules.py template.yaml              # check the template
    python tests/python/template_rules.py --self-test template.yaml  # every rule fires on a broken copy

Exit status 1 with one line per broken rule.
"""

import copy
import logging
import os
import re
import sys

from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

# Actions that support no resource-level permissions (the IAM Service Authorization Reference
# lists no resource type for them): the only ones allowed on Resource "*".
STAR_ONLY_ACTIONS = {
    "iot:ListAuditFindings",
    "iot:DescribeAuditTask",
    "iot:ListAuditTasks",
    "iot:DescribeAccountAuditConfiguration",
    "iot:UpdateAccountAuditConfiguration",
    "iot:ListScheduledAudits",
    "iot:StartOnDemandAuditTask",
    "iot:ListAuditSuppressions",
    "iot:CreateAuditSuppression",
    "iot:UpdateAuditSuppression",
    "iot:DeleteAuditSuppression",
}
FUNCTION_TIMEOUT_DEFAULT = 3
LAMBDA_ASYNC_RETRIES = 2
LAMBDA_RETRY_DELAYS_S = 60 + 120


class NoManagedPolicies:
    """The translator asks for AWS managed policy ARNs only to resolve names; none are used."""

    def load(self):
        return {}


def expand(template):
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    t = copy.deepcopy(template)
    for r in t["Resources"].values():
        if r["Type"] == "AWS::Serverless::Function":
            r["Properties"]["CodeUri"] = "s3://bucket/key"  # as `sam package` leaves it
    return transform(t, {}, NoManagedPolicies())


def as_list(v):
    return v if isinstance(v, list) else [v]


def refs(node):
    """Logical ids a template expression names (Ref, GetAtt, Sub variables)."""
    out = set()
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "Ref" and isinstance(v, str):
                out.add(v)
            elif k == "Fn::GetAtt":
                out.add(v[0] if isinstance(v, list) else v.split(".")[0])
            elif k == "Fn::Sub":
                text = v[0] if isinstance(v, list) else v
                for name in re.findall(r"\$\{([A-Za-z0-9]+)(?:\.[A-Za-z]+)?\}", text):
                    out.add(name)
                if isinstance(v, list):
                    out |= refs(v[1])
            else:
                out |= refs(v)
    elif isinstance(node, list):
        for v in node:
            out |= refs(v)
    return out


def statements(doc):
    return [s for s in as_list((doc or {}).get("Statement", [])) if isinstance(s, dict)]


def role_statements(role):
    out = []
    for p in role["Properties"].get("Policies", []) or []:
        out += statements(p.get("PolicyDocument"))
    return out


def allows(stmts, action, target=None, principal_service=None):
    """Whether some Allow statement grants `action` (on a resource naming `target`)."""
    for s in stmts:
        if s.get("Effect") != "Allow":
            continue
        if principal_service and principal_service not in as_list((s.get("Principal") or {}).get("Service", [])):
            continue
        acts = as_list(s.get("Action", []))
        if not any(a == action or (a.endswith("*") and action.startswith(a[:-1])) for a in acts):
            continue
        if target is None or target in refs(s.get("Resource")):
            return s
    return None


def check(template):
    """Every broken rule, as a line naming the resource."""
    t = expand(template)
    res = t["Resources"]
    errors = []
    of_type = lambda ty: {k: v for k, v in res.items() if v["Type"] == ty}
    keys = of_type("AWS::KMS::Key")
    topics = of_type("AWS::SNS::Topic")
    roles = of_type("AWS::IAM::Role")
    functions = of_type("AWS::Lambda::Function")

    # KMS: customer managed, rotated.
    for name, key in keys.items():
        if key["Properties"].get("EnableKeyRotation") is not True:
            errors.append(f"{name}: customer managed keys rotate (EnableKeyRotation: true)")
    topic_key = {}
    for name, topic in topics.items():
        kid = topic["Properties"].get("KmsMasterKeyId")
        named = refs(kid) & set(keys)
        if not named:
            errors.append(f"{name}: topics are encrypted with this stack's customer managed key, not {kid!r}")
        else:
            topic_key[name] = named.pop()

    # Alarms: the topic they publish to lets CloudWatch publish and use its key, for this account's alarms only.
    for name, alarm in of_type("AWS::CloudWatch::Alarm").items():
        p = alarm["Properties"]
        for action in p.get("AlarmActions", []) + p.get("OKActions", []) + p.get("InsufficientDataActions", []):
            for topic in refs(action) & set(topics):
                key = topic_key.get(topic)
                if key is None:
                    continue
                ks = allows(statements(keys[key]["Properties"]["KeyPolicy"]), "kms:Decrypt", principal_service="cloudwatch.amazonaws.com")
                kg = allows(statements(keys[key]["Properties"]["KeyPolicy"]), "kms:GenerateDataKey", principal_service="cloudwatch.amazonaws.com")
                if not (ks and kg):
                    errors.append(f"{name}: key {key} of topic {topic} must let cloudwatch.amazonaws.com kms:Decrypt and kms:GenerateDataKey*")
                for s in filter(None, [ks, kg]):
                    cond = s.get("Condition", {})
                    if "aws:SourceAccount" not in cond.get("StringEquals", {}) or "aws:SourceArn" not in cond.get("ArnLike", {}):
                        errors.append(f"{name}: key {key}'s CloudWatch grant is scoped with aws:SourceAccount and aws:SourceArn")
                policies = [pol for pol in of_type("AWS::SNS::TopicPolicy").values() if topic in refs(pol["Properties"]["Topics"])]
                if not any(allows(statements(pol["Properties"]["PolicyDocument"]), "sns:Publish", principal_service="cloudwatch.amazonaws.com") for pol in policies):
                    errors.append(f"{name}: topic {topic}'s policy must let cloudwatch.amazonaws.com sns:Publish")

    # IAM: whoever publishes to an encrypted topic may use its key; "*" only where nothing narrower exists; no Scan.
    for name, role in roles.items():
        stmts = role_statements(role)
        for s in stmts:
            if s.get("Effect") != "Allow":
                continue
            acts = as_list(s.get("Action", []))
            if s.get("Resource") == "*":
                wide = [a for a in acts if a not in STAR_ONLY_ACTIONS]
                if wide:
                    errors.append(f"{name}: {', '.join(wide)} on Resource \"*\" (these actions take resource ARNs)")
            if any(a in ("dynamodb:Scan", "dynamodb:*") for a in acts):
                errors.append(f"{name}: dynamodb:Scan is granted; the functions never scan")
            if any(a.endswith(":*") or a == "*" for a in acts):
                errors.append(f"{name}: wildcard action {acts}")
        for s in stmts:
            if s.get("Effect") == "Allow" and "sns:Publish" in as_list(s.get("Action", [])):
                for topic in refs(s.get("Resource")) & set(topic_key):
                    key = topic_key[topic]
                    for action in ("kms:GenerateDataKey", "kms:Decrypt"):
                        if not allows(stmts, action, key):
                            errors.append(f"{name}: publishes to {topic} but lacks {action} on its key {key}")

    # Asynchronous invocations: the failure destination and the schedules' dead-letter queue are writable.
    for name, cfg in of_type("AWS::Lambda::EventInvokeConfig").items():
        fn = next(iter(refs(cfg["Properties"]["FunctionName"])))
        dest = cfg["Properties"].get("DestinationConfig", {}).get("OnFailure", {}).get("Destination")
        role = next(iter(refs(functions[fn]["Properties"]["Role"])))
        for q in refs(dest):
            if not allows(role_statements(roles[role]), "sqs:SendMessage", q):
                errors.append(f"{name}: {role} cannot sqs:SendMessage to its OnFailure destination {q}")
    for fn in functions:
        if fn not in {next(iter(refs(c["Properties"]["FunctionName"]))) for c in of_type("AWS::Lambda::EventInvokeConfig").values()}:
            errors.append(f"{fn}: every function is invoked asynchronously here and needs an OnFailure destination")
    for name, sched in of_type("AWS::Scheduler::Schedule").items():
        target = sched["Properties"]["Target"]
        dlq = refs(target.get("DeadLetterConfig", {}).get("Arn"))
        if not dlq:
            errors.append(f"{name}: schedules have a dead-letter queue")
        role = next(iter(refs(target["RoleArn"])))
        for q in dlq:
            if not allows(role_statements(roles[role]), "sqs:SendMessage", q):
                errors.append(f"{name}: scheduler role {role} cannot sqs:SendMessage to its dead-letter queue {q}")
            if res[q]["Properties"].get("FifoQueue"):
                errors.append(f"{name}: EventBridge Scheduler dead-letter queues cannot be FIFO ({q})")

    # SNS -> Lambda: the permission names the topic.
    for name, sub in of_type("AWS::SNS::Subscription").items():
        if sub["Properties"].get("Protocol") != "lambda":
            continue
        topic = refs(sub["Properties"]["TopicArn"])
        fn = refs(sub["Properties"]["Endpoint"])
        ok = any(
            p["Properties"].get("Principal") == "sns.amazonaws.com"
            and refs(p["Properties"].get("FunctionName")) == fn
            and refs(p["Properties"].get("SourceArn")) == topic
            for p in of_type("AWS::Lambda::Permission").values()
        )
        if not ok:
            errors.append(f"{name}: the Lambda permission for SNS names the topic as SourceArn")

    # SQS event source: visibility timeout at least six times the function timeout.
    for name, esm in of_type("AWS::Lambda::EventSourceMapping").items():
        fn = next(iter(refs(esm["Properties"]["FunctionName"])))
        for q in refs(esm["Properties"].get("EventSourceArn")) & set(of_type("AWS::SQS::Queue")):
            vis = res[q]["Properties"].get("VisibilityTimeout", 30)
            timeout = functions[fn]["Properties"].get("Timeout", FUNCTION_TIMEOUT_DEFAULT)
            if vis < 6 * timeout:
                errors.append(f"{q}: VisibilityTimeout {vis} s < 6 x {fn}'s timeout {timeout} s")

    # Custom resources: CloudFormation waits long enough for every attempt, and no longer than an hour.
    for name, r in res.items():
        if not r["Type"].startswith("Custom::"):
            continue
        token = refs(r["Properties"].get("ServiceToken"))
        fn = next(iter(token & set(functions)), None)
        wait = r["Properties"].get("ServiceTimeout")
        if fn is None or wait is None:
            errors.append(f"{name}: a Lambda-backed custom resource with ServiceTimeout")
            continue
        timeout = functions[fn]["Properties"].get("Timeout", FUNCTION_TIMEOUT_DEFAULT)
        need = (1 + LAMBDA_ASYNC_RETRIES) * timeout + LAMBDA_RETRY_DELAYS_S
        if not (need <= int(wait) <= 3600):
            errors.append(f"{name}: ServiceTimeout {wait} s must cover {need} s (3 attempts of {timeout} s) and stay <= 3600")

    # Logs: each function writes to a log group of the stack's, with a retention.
    for fn, f in functions.items():
        group = refs((f["Properties"].get("LoggingConfig") or {}).get("LogGroup")) & set(of_type("AWS::Logs::LogGroup"))
        if not group:
            errors.append(f"{fn}: logs go to a stack log group (LoggingConfig.LogGroup), not one Lambda creates without retention")
        for g in group:
            if "RetentionInDays" not in res[g]["Properties"]:
                errors.append(f"{g}: log groups have a retention")

    # PassRole: only to the service the roles are for.
    for name, role in roles.items():
        for s in role_statements(role):
            if s.get("Effect") == "Allow" and "iam:PassRole" in as_list(s.get("Action", [])):
                if "iam:PassedToService" not in s.get("Condition", {}).get("StringEquals", {}):
                    errors.append(f"{name}: iam:PassRole is limited with iam:PassedToService")

    # Data: the table outlives the stack, is recoverable and encrypted.
    for name, table in of_type("AWS::DynamoDB::Table").items():
        if table.get("DeletionPolicy") != "Retain" or table.get("UpdateReplacePolicy") != "Retain":
            errors.append(f"{name}: tables are retained on delete and replace")
        p = table["Properties"]
        if not p.get("PointInTimeRecoverySpecification", {}).get("PointInTimeRecoveryEnabled"):
            errors.append(f"{name}: point-in-time recovery on")
        if not p.get("SSESpecification", {}).get("SSEEnabled"):
            errors.append(f"{name}: SSE with KMS on")
    for name, q in of_type("AWS::SQS::Queue").items():
        if not (q["Properties"].get("SqsManagedSseEnabled") or q["Properties"].get("KmsMasterKeyId")):
            errors.append(f"{name}: queues are encrypted")

    # Queues a service sends to: only named sources (a queue policy for sns.amazonaws.com
    # without aws:SourceArn would take any account's topic).
    for name, qp in of_type("AWS::SQS::QueuePolicy").items():
        for st in statements(qp["Properties"].get("PolicyDocument")):
            services = as_list((st.get("Principal") or {}).get("Service", []))
            if st.get("Effect") == "Allow" and services:
                cond = st.get("Condition", {})
                named = any("aws:SourceArn" in cond.get(op, {}) for op in ("ArnLike", "ArnEquals"))
                if not named:
                    errors.append(f"{name}: a queue policy for {services} names the sending resources (aws:SourceArn)")

    # IoT's roles: confused-deputy conditions.
    for name, role in roles.items():
        for s in statements(role["Properties"].get("AssumeRolePolicyDocument")):
            if "iot.amazonaws.com" in as_list((s.get("Principal") or {}).get("Service", [])):
                cond = s.get("Condition", {})
                if "aws:SourceAccount" not in cond.get("StringEquals", {}) or "aws:SourceArn" not in cond.get("ArnLike", {}):
                    errors.append(f"{name}: trust of iot.amazonaws.com is scoped with aws:SourceAccount and aws:SourceArn")
    return errors


def self_test(template):
    """Each rule fires on a copy of the template broken the way it guards against."""
    r = template["Resources"]

    def broken(mutate):
        t = copy.deepcopy(template)
        mutate(t["Resources"])
        return check(t)

    cases = {
        "AWS managed key on the digest topic": (
            lambda r: r["DigestTopic"]["Properties"].update(KmsMasterKeyId="alias/aws/sns"),
            "DigestTopic: topics are encrypted",
        ),
        "key policy without CloudWatch": (
            lambda r: r["TopicKey"]["Properties"]["KeyPolicy"]["Statement"].pop(1),
            "must let cloudwatch.amazonaws.com kms:Decrypt",
        ),
        "no rotation": (lambda r: r["TopicKey"]["Properties"].pop("EnableKeyRotation"), "rotate"),
        "topic policy without CloudWatch": (
            lambda r: r["DigestTopicPolicy"]["Properties"]["PolicyDocument"]["Statement"].pop(0),
            "policy must let cloudwatch.amazonaws.com sns:Publish",
        ),
        "publisher without the key": (
            lambda r: r["IotNotificationRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"].pop(1),
            "IotNotificationRole: publishes to AuditNotificationTopic but lacks",
        ),
        "a Scan": (
            lambda r: r["AuditSweeperFunction"]["Properties"]["Policies"].append({"DynamoDBReadPolicy": {"TableName": {"Ref": "FindingsTable"}}}),
            "dynamodb:Scan",
        ),
        "short custom resource wait": (
            lambda r: r["AuditConfiguration"]["Properties"].update(ServiceTimeout=300),
            "ServiceTimeout 300 s",
        ),
        "short visibility timeout": (
            lambda r: r["ContinuationQueue"]["Properties"].update(VisibilityTimeout=960),
            "VisibilityTimeout 960",
        ),
        "log group without retention": (
            lambda r: r["ConfigSyncLogGroup"]["Properties"].pop("RetentionInDays"),
            "ConfigSyncLogGroup: log groups have a retention",
        ),
        "PassRole to any service": (
            lambda r: r["ConfigSyncFunction"]["Properties"]["Policies"][1]["Statement"][3].pop("Condition"),
            "iam:PassRole is limited",
        ),
        "alarms to a chat topic CloudWatch may not publish to": (
            lambda r: r.pop("ChatTopicPolicy"),
            "topic ChatTopic's policy must let cloudwatch.amazonaws.com sns:Publish",
        ),
        "a queue open to any topic": (
            lambda r: r["MemberNotificationQueuePolicy"]["Properties"]["PolicyDocument"]["Statement"][0].pop("Condition"),
            "MemberNotificationQueuePolicy: a queue policy for",
        ),
        "unscoped IoT trust": (
            lambda r: r["AuditRole"]["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]["Condition"].pop("ArnLike"),
            "AuditRole: trust of iot.amazonaws.com",
        ),
    }
    assert r, "a template with resources"
    failures = []
    for what, (mutate, expected) in cases.items():
        found = broken(mutate)
        if not any(expected in e for e in found):
            failures.append(f"self-test: {what} was not caught (expected {expected!r}; got {found})")
    return failures


def main(argv):
    logging.disable(logging.WARNING)  # the translator's own metrics chatter
    args = [a for a in argv[1:] if not a.startswith("--")]
    path = args[0] if args else "template.yaml"
    template = yaml_parse(open(path).read())
    errors = check(template)
    if "--self-test" in argv:
        errors += self_test(template)
    for e in errors:
        print(f"{path}: {e}")
    if not errors:
        print(f"{path}: every deploy rule holds" + (" (and each one fires on a broken copy)" if "--self-test" in argv else ""))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
