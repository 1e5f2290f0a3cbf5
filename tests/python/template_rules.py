"""The deploy rules of the templates, checked on what CloudFormation would really receive.

A template with the SAM transform (template.yaml) is expanded with the SAM translator (the same
one `sam deploy` uses), so the roles, permissions, subscriptions and schedules SAM generates are
checked too; a plain template (member.yaml) is checked as written. Each rule guards against
something AWS reveals only at run time in a real account (an alarm whose mail never arrives, a
dead-letter queue nobody may write to, a member whose notifications never reach the hub).

Every rule is marked as AWS's (AWS documents the behaviour; the source URL is in the message) or
ours (a project policy AWS leaves open). `--list-rules` prints the table; docs/deploy-review.md
explains each one.

    python tests/python/template_rules.py template.yaml member.yaml              # check them
    python tests/python/template_rules.py --self-test template.yaml member.yaml  # every rule fires on a broken copy
    python tests/python/template_rules.py --list-rules                           # which rule is AWS's, which ours

Exit status 1 with one line per broken rule.
"""

import copy
import json
import logging
import os
import re
import sys

from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

# ---------------------------------------------------------------------------- the rules
# id: (kind, source, what the rule says). kind "AWS": AWS documents the behaviour at `source`;
# "ours": a project policy (source, when given, is what it builds on).
SNS_XREGION = "https://docs.aws.amazon.com/sns/latest/dg/sns-cross-region-delivery.html"
IOT_CREATE_SCHEDULED_AUDIT = "https://docs.aws.amazon.com/iot/latest/apireference/API_CreateScheduledAudit.html"
IAM_PRINCIPAL = "https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_principal.html#principal-roles"
ORGS_RCP_EXAMPLES = "https://docs.aws.amazon.com/organizations/latest/userguide/orgs_manage_policies_rcps_examples.html"
RULES = {
    "key-rotation": ("ours", "https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-resource-kms-key.html",
                     "customer managed keys rotate (EnableKeyRotation, off by default)"),
    "topic-key": ("ours", "https://docs.aws.amazon.com/sns/latest/dg/sns-key-management.html",
                  "every topic is encrypted; with the stack's customer managed key when anything but this account's "
                  "IAM principals publishes to it (an alarm, a service principal in its policy), else alias/aws/sns suffices"),
    "alarm-key": ("AWS", "https://repost.aws/knowledge-center/cloudwatch-receive-sns-for-alarm-trigger",
                  "the key of a topic alarms publish to lets cloudwatch.amazonaws.com kms:Decrypt and kms:GenerateDataKey*"),
    "alarm-key-scoped": ("ours", "https://aws.github.io/modern-data-architecture-accelerator/typedocs/functions/_aws-mdaa_cloudwatch-constructs.grantCloudWatchAlarmsTopicAccess.html",
                         "that key grant is scoped with aws:SourceAccount and aws:SourceArn"),
    "alarm-topic-policy": ("AWS", "https://docs.aws.amazon.com/sns/latest/dg/sns-access-policy-use-cases.html",
                           "the policy of a topic alarms publish to lets cloudwatch.amazonaws.com sns:Publish"),
    "star-resource": ("ours", "https://docs.aws.amazon.com/service-authorization/latest/reference/list_awsiot.html",
                      "Resource \"*\" only for actions without a resource type (IoT's audit operations, "
                      "organizations:ListAccounts), or KMS use through one service "
                      "(kms:ViaService) of an AWS managed key, whose ARN differs per account"),
    "no-scan": ("ours", "", "no dynamodb:Scan: the functions never scan"),
    "no-wildcard-action": ("ours", "", "no wildcard actions"),
    "publisher-key": ("AWS", "https://docs.aws.amazon.com/sns/latest/dg/sns-key-management.html",
                      "whoever publishes to an encrypted topic may kms:GenerateDataKey* and kms:Decrypt with its key"),
    "destination-writable": ("AWS", "https://docs.aws.amazon.com/lambda/latest/dg/invocation-async.html",
                             "a function's role may sqs:SendMessage to its OnFailure destination"),
    "on-failure": ("ours", "", "every function (all are invoked asynchronously) has an OnFailure destination"),
    "schedule-dlq": ("ours", "", "every schedule has a dead-letter queue"),
    "schedule-dlq-writable": ("AWS", "https://docs.aws.amazon.com/scheduler/latest/UserGuide/configuring-schedule-dlq.html",
                              "a schedule's role may sqs:SendMessage to its dead-letter queue, a standard queue"),
    "schedule-name": ("AWS", "https://docs.aws.amazon.com/serverless-application-model/latest/developerguide/sam-property-function-schedulev2.html",
                      "no fixed schedule name (ScheduleV2 OmitName: true): SAM names a schedule after its logical id, so a "
                      "second copy of the stack in the account-region fails with \"already exists\""),
    "sns-lambda-permission": ("ours", "", "the Lambda permission of an SNS subscription names the topic (SourceArn)"),
    "sqs-visibility": ("AWS", "https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-configure.html",
                       "an SQS event source's visibility timeout is at least six times the function's timeout"),
    "custom-resource-timeout": ("AWS", "https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-resource-cloudformation-customresource.html",
                                "ServiceTimeout covers every asynchronous attempt and stays within 1-3600 s"),
    "log-group": ("ours", "https://docs.aws.amazon.com/lambda/latest/dg/monitoring-cloudwatchlogs-advanced.html",
                  "each function logs to a log group of the stack, which has a retention"),
    "passrole": ("ours", "https://docs.aws.amazon.com/IAM/latest/UserGuide/id_roles_use_passrole.html",
                 "iam:PassRole is limited with iam:PassedToService"),
    "table-data": ("ours", "", "tables are retained on delete and replace, recoverable (PITR) and KMS-encrypted"),
    "queue-encrypted": ("ours", "", "queues are encrypted"),
    "queue-policy-source": ("ours", "", "a queue policy for a service principal names the sending resources (aws:SourceArn)"),
    "iot-trust": ("ours", "https://docs.aws.amazon.com/iot/latest/developerguide/dd-cross-service-confused-deputy-prevention.html",
                  "trust of iot.amazonaws.com is scoped with aws:SourceAccount and aws:SourceArn (AWS recommends it)"),
    "opt-in-principals": ("AWS", SNS_XREGION,
                          "a queue that takes SNS topics of any region allows sns.amazonaws.com and sns.<region>.amazonaws.com "
                          "for every opt-in region"),
    "subscription-after-role": ("ours", "",
                                "a subscription of another account's queue, which that account confirms only once it can "
                                "assume this stack's cross-account role, is created after that role (DependsOn)"),
    "hub-account-region": ("ours", "https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-resource-iot-accountauditconfiguration.html",
                           "a member's audit setup is skipped in exactly the hub's account-region, where the hub's "
                           "config-sync owns the account's one audit configuration"),
    "schedule-day-required": ("AWS", IOT_CREATE_SCHEDULED_AUDIT,
                              "the template's Rules refuse a WEEKLY or BIWEEKLY audit without a day of week and a MONTHLY "
                              "audit without a day of month before any resource is created (CreateScheduledAudit requires them)"),
    "schedule-day-unused": ("ours", "",
                            "the template's Rules refuse a day field of another frequency (config-sync refuses it; AWS does "
                            "not say what IoT does with it), and accept every valid schedule"),
    "hub-trust": ("ours", IAM_PRINCIPAL,
                  "a member's hub-access role trusts exactly the hub's roles: Principal the hub account's root, narrowed by "
                  "aws:PrincipalArn (a role ARN as Principal would stop matching once the role is re-created) and "
                  "aws:PrincipalOrgID"),
    "hub-principals": ("ours", "",
                       "the hub's HubPrincipalArns output names every role that assumes members' roles, and only those"),
    "queue-org": ("ours", ORGS_RCP_EXAMPLES,
                  "a queue that takes SNS topics of any account refuses topics outside the organization (aws:SourceOrgID), "
                  "only where SNS sends aws:SourceAccount (Null guard), so a key SNS may not send never refuses every member"),
}

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
    # https://docs.aws.amazon.com/service-authorization/latest/reference/list_awsorganizations.html:
    # ListAccounts lists no resource type ("If the column has no value, you must specify all
    # resources ("*")"); cfn-lint's copy of the reference agrees (AdditionalSpecs/Policies.json).
    "organizations:ListAccounts",
}
# KMS use allowed on "*" when scoped to one service (kms:ViaService): an AWS managed key.
KMS_VIA_SERVICE_ACTIONS = {"kms:GenerateDataKey*", "kms:GenerateDataKey", "kms:Decrypt"}
FUNCTION_TIMEOUT_DEFAULT = 3
LAMBDA_ASYNC_RETRIES = 2
LAMBDA_RETRY_DELAYS_S = 60 + 120
# The opt-in regions AWS's SNS cross-region delivery page lists (SNS_XREGION, "Opt-in Regions";
# ap-northeast-3 is listed on the page's current web edition only).
SNS_OPT_IN_REGIONS = {
    "af-south-1", "ap-east-1", "ap-northeast-3", "ap-south-2", "ap-southeast-3", "ap-southeast-4",
    "eu-central-2", "eu-south-1", "eu-south-2", "il-central-1", "me-central-1", "me-south-1",
}
SAM_TRANSFORM = "AWS::Serverless-2016-10-31"


def tag(rule):
    kind, source, _ = RULES[rule]
    return f"[{kind}: {source}]" if kind == "AWS" else "[ours]"


class NoManagedPolicies:
    """The translator asks for AWS managed policy ARNs only to resolve names; none are used."""

    def load(self):
        return {}


def is_sam(template):
    return SAM_TRANSFORM in as_list(template.get("Transform", []))


def is_member(template):
    return "HubAccountId" in (template.get("Parameters") or {})


def expand(template):
    t = copy.deepcopy(template)
    if not is_sam(t):
        return t
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
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


class Unresolved(Exception):
    pass


PSEUDO = {"AWS::AccountId": "111122223333", "AWS::Region": "us-east-1", "AWS::Partition": "aws",
          "AWS::URLSuffix": "amazonaws.com", "AWS::StackName": "stack"}


def resolve(node, values):
    """The value of an expression made of Ref (parameters, pseudo parameters), Fn::Sub, Fn::Join,
    Fn::Split and Fn::Select, given `values`; Unresolved for anything else (a resource's)."""
    if isinstance(node, (str, int, bool)):
        return node
    if isinstance(node, list):
        return [resolve(v, values) for v in node]
    if not isinstance(node, dict) or len(node) != 1:
        raise Unresolved(node)
    (k, v), = node.items()
    if k == "Ref":
        if v in values:
            return values[v]
        raise Unresolved(v)
    if k == "Fn::Sub":
        text, local = (v[0], v[1]) if isinstance(v, list) else (v, {})
        env = {**values, **{n: resolve(e, values) for n, e in local.items()}}

        def var(m):
            if m.group(1) not in env:
                raise Unresolved(m.group(1))
            return str(env[m.group(1)])
        return re.sub(r"\$\{([^}!][^}]*)\}", var, text)
    if k == "Fn::Join":
        return v[0].join(str(x) for x in as_list(resolve(v[1], values)))
    if k == "Fn::Split":
        return resolve(v[1], values).split(v[0])
    if k == "Fn::Select":
        return as_list(resolve(v[1], values))[int(resolve(v[0], values))]
    raise Unresolved(k)


def parameter_values(template, **overrides):
    values = dict(PSEUDO)
    for name, p in (template.get("Parameters") or {}).items():
        if "Default" in p:
            values[name] = p["Default"]
    values.update(overrides)
    return values


def condition_holds(template, name, values):
    """Evaluates a condition of the Conditions section with `values` (Fn::And, Or, Not, Equals, Condition)."""
    conditions = template.get("Conditions") or {}

    def ev(node):
        if isinstance(node, dict) and len(node) == 1:
            (k, v), = node.items()
            if k == "Condition":
                return ev(conditions[v])
            if k == "Fn::And":
                return all(ev(c) for c in v)
            if k == "Fn::Or":
                return any(ev(c) for c in v)
            if k == "Fn::Not":
                return not ev(v[0])
            if k == "Fn::Equals":
                return str(resolve(v[0], values)) == str(resolve(v[1], values))
        raise Unresolved(node)
    return ev(conditions[name])


def failed_rules(template, values):
    """The AssertDescriptions of the template's Rules that refuse `values` (parameters as given to
    CloudFormation: CommaDelimitedList parameters as lists). Rule functions: Fn::And, Or, Not,
    Equals, Contains, and Ref; Unresolved for any other."""
    def ev(node):
        if isinstance(node, (str, int, bool)):
            return node
        if isinstance(node, list):
            return [ev(v) for v in node]
        if isinstance(node, dict) and len(node) == 1:
            (k, v), = node.items()
            if k == "Ref":
                if v not in values:
                    raise Unresolved(v)
                return values[v]
            if k == "Fn::And":
                return all(ev(c) for c in v)
            if k == "Fn::Or":
                return any(ev(c) for c in v)
            if k == "Fn::Not":
                return not ev(v[0])
            if k == "Fn::Equals":
                return ev(v[0]) == ev(v[1])
            if k == "Fn::Contains":
                return ev(v[1]) in as_list(ev(v[0]))
        raise Unresolved(node)
    out = []
    for name, rule in (template.get("Rules") or {}).items():
        if "RuleCondition" in rule and not ev(rule["RuleCondition"]):
            continue
        out += [f"{name}: {a.get('AssertDescription', '')}" for a in rule.get("Assertions", []) if not ev(a["Assert"])]
    return out


def rule_values(template, **overrides):
    """Parameter values for the Rules: defaults, a placeholder for parameters without one (a list
    for CommaDelimitedList), then `overrides`."""
    values = dict(PSEUDO)
    for name, p in (template.get("Parameters") or {}).items():
        is_list = p.get("Type") == "CommaDelimitedList"
        if "Default" in p:
            values[name] = str(p["Default"]).split(",") if is_list else str(p["Default"])
        else:
            values[name] = ["arn:aws:iam::999988887777:role/placeholder"] if is_list else "placeholder"
    values.update(overrides)
    return values


SCHEDULE_PARAMS = ("ScheduledAuditFrequency", "ScheduledAuditDayOfWeek", "ScheduledAuditDayOfMonth")


def statements(doc):
    """A policy's statements; a statement under Fn::If counts in both branches (AWS::NoValue drops out)."""
    def unwrap(node):
        if not isinstance(node, dict) or node == {"Ref": "AWS::NoValue"}:
            return []
        if set(node) == {"Fn::If"}:
            return [s for branch in node["Fn::If"][1:] for s in unwrap(branch)]
        return [node]
    return [s for st in as_list((doc or {}).get("Statement", [])) for s in unwrap(st)]


def role_statements(role):
    out = []
    for p in role["Properties"].get("Policies", []) or []:
        out += statements(p.get("PolicyDocument"))
    return out


def service_principals(statement, values):
    """The service principals of a statement, resolved where possible (else as written)."""
    principal = statement.get("Principal")
    raw = principal.get("Service", []) if isinstance(principal, dict) else []
    try:
        return [s for s in as_list(resolve(raw, values)) if isinstance(s, str)]
    except Unresolved:
        return as_list(raw)


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
    """Every broken rule, as a line naming the resource and whether the rule is AWS's or ours."""
    t = expand(template)
    res = t["Resources"]
    values = parameter_values(t)
    errors = []

    def err(rule, name, text):
        errors.append(f"{name}: {text} {tag(rule)}")

    of_type = lambda ty: {k: v for k, v in res.items() if v["Type"] == ty}
    keys = of_type("AWS::KMS::Key")
    topics = of_type("AWS::SNS::Topic")
    roles = of_type("AWS::IAM::Role")
    functions = of_type("AWS::Lambda::Function")
    alarms = of_type("AWS::CloudWatch::Alarm")
    topic_policies = of_type("AWS::SNS::TopicPolicy")

    # KMS: customer managed, rotated.
    for name, key in keys.items():
        if key["Properties"].get("EnableKeyRotation") is not True:
            err("key-rotation", name, "customer managed keys rotate (EnableKeyRotation: true)")

    # Topics: encrypted; with the stack's key when a service publishes (an alarm, or a service
    # principal in the topic policy), which the AWS managed key cannot allow.
    alarm_topics = set()
    for alarm in alarms.values():
        p = alarm["Properties"]
        for action in p.get("AlarmActions", []) + p.get("OKActions", []) + p.get("InsufficientDataActions", []):
            alarm_topics |= refs(action) & set(topics)
    topic_key, managed_key_topics = {}, set()
    for name, topic in topics.items():
        kid = topic["Properties"].get("KmsMasterKeyId")
        named = refs(kid) & set(keys)
        if named:
            topic_key[name] = named.pop()
            continue
        if kid is None:
            err("topic-key", name, "topics are encrypted (KmsMasterKeyId)")
            continue
        managed_key_topics.add(name)
        published_by_services = [
            s for pol in topic_policies.values() if name in refs(pol["Properties"]["Topics"])
            for st in statements(pol["Properties"]["PolicyDocument"]) if st.get("Effect") == "Allow"
            for s in service_principals(st, values)
        ]
        if name in alarm_topics or published_by_services:
            who = "alarms" if name in alarm_topics else ", ".join(map(str, published_by_services))
            err("topic-key", name, f"topics are encrypted with this stack's customer managed key when a service publishes ({who}), not {kid!r}")

    # Alarms: the topic they publish to lets CloudWatch publish and use its key, for this account's alarms only.
    for name, alarm in alarms.items():
        p = alarm["Properties"]
        for action in p.get("AlarmActions", []) + p.get("OKActions", []) + p.get("InsufficientDataActions", []):
            for topic in refs(action) & set(topics):
                key = topic_key.get(topic)
                if key is None:
                    continue
                ks = allows(statements(keys[key]["Properties"]["KeyPolicy"]), "kms:Decrypt", principal_service="cloudwatch.amazonaws.com")
                kg = allows(statements(keys[key]["Properties"]["KeyPolicy"]), "kms:GenerateDataKey", principal_service="cloudwatch.amazonaws.com")
                if not (ks and kg):
                    err("alarm-key", name, f"key {key} of topic {topic} must let cloudwatch.amazonaws.com kms:Decrypt and kms:GenerateDataKey*")
                for s in filter(None, [ks, kg]):
                    cond = s.get("Condition", {})
                    if "aws:SourceAccount" not in cond.get("StringEquals", {}) or "aws:SourceArn" not in cond.get("ArnLike", {}):
                        err("alarm-key-scoped", name, f"key {key}'s CloudWatch grant is scoped with aws:SourceAccount and aws:SourceArn")
                policies = [pol for pol in topic_policies.values() if topic in refs(pol["Properties"]["Topics"])]
                if not any(allows(statements(pol["Properties"]["PolicyDocument"]), "sns:Publish", principal_service="cloudwatch.amazonaws.com") for pol in policies):
                    err("alarm-topic-policy", name, f"topic {topic}'s policy must let cloudwatch.amazonaws.com sns:Publish")

    # IAM: whoever publishes to an encrypted topic may use its key; "*" only where nothing narrower exists; no Scan.
    for name, role in roles.items():
        stmts = role_statements(role)
        for s in stmts:
            if s.get("Effect") != "Allow":
                continue
            acts = as_list(s.get("Action", []))
            if s.get("Resource") == "*":
                via_service = "kms:ViaService" in s.get("Condition", {}).get("StringEquals", {})
                wide = [a for a in acts if a not in STAR_ONLY_ACTIONS and not (via_service and a in KMS_VIA_SERVICE_ACTIONS)]
                if wide:
                    err("star-resource", name, f"{', '.join(wide)} on Resource \"*\" (these actions take resource ARNs; KMS only through kms:ViaService)")
            if any(a in ("dynamodb:Scan", "dynamodb:*") for a in acts):
                err("no-scan", name, "dynamodb:Scan is granted; the functions never scan")
            if any(a.endswith(":*") or a == "*" for a in acts):
                err("no-wildcard-action", name, f"wildcard action {acts}")
        for s in stmts:
            if s.get("Effect") == "Allow" and "sns:Publish" in as_list(s.get("Action", [])):
                for topic in refs(s.get("Resource")) & set(topic_key):
                    key = topic_key[topic]
                    for action in ("kms:GenerateDataKey", "kms:Decrypt"):
                        if not allows(stmts, action, key):
                            err("publisher-key", name, f"publishes to {topic} but lacks {action} on its key {key}")
                for topic in refs(s.get("Resource")) & managed_key_topics:
                    for action in ("kms:GenerateDataKey", "kms:Decrypt"):
                        if not any(st.get("Resource") == "*" and allows([st], action) for st in stmts):
                            err("publisher-key", name, f"publishes to {topic} but lacks {action} on its AWS managed key")

    # Asynchronous invocations: the failure destination and the schedules' dead-letter queue are writable.
    for name, cfg in of_type("AWS::Lambda::EventInvokeConfig").items():
        fn = next(iter(refs(cfg["Properties"]["FunctionName"])))
        dest = cfg["Properties"].get("DestinationConfig", {}).get("OnFailure", {}).get("Destination")
        role = next(iter(refs(functions[fn]["Properties"]["Role"])))
        for q in refs(dest):
            if not allows(role_statements(roles[role]), "sqs:SendMessage", q):
                err("destination-writable", name, f"{role} cannot sqs:SendMessage to its OnFailure destination {q}")
    for fn in functions:
        if fn not in {next(iter(refs(c["Properties"]["FunctionName"]))) for c in of_type("AWS::Lambda::EventInvokeConfig").values()}:
            err("on-failure", fn, "every function is invoked asynchronously here and needs an OnFailure destination")
    for name, sched in of_type("AWS::Scheduler::Schedule").items():
        target = sched["Properties"]["Target"]
        dlq = refs(target.get("DeadLetterConfig", {}).get("Arn"))
        if not dlq:
            err("schedule-dlq", name, "schedules have a dead-letter queue")
        role = next(iter(refs(target["RoleArn"])))
        for q in dlq:
            if not allows(role_statements(roles[role]), "sqs:SendMessage", q):
                err("schedule-dlq-writable", name, f"scheduler role {role} cannot sqs:SendMessage to its dead-letter queue {q}")
            if res[q]["Properties"].get("FifoQueue"):
                err("schedule-dlq-writable", name, f"EventBridge Scheduler dead-letter queues cannot be FIFO ({q})")
        # Two copies of the stack in one account-region: a schedule's name is its own only when
        # CloudFormation generates it (OmitName) or it carries the stack's name.
        fixed = sched["Properties"].get("Name")
        if fixed is not None and "AWS::StackName" not in refs(fixed):
            err("schedule-name", name, f"schedule named {fixed!r} for every copy of the stack (set OmitName: true on the ScheduleV2 event)")

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
            err("sns-lambda-permission", name, "the Lambda permission for SNS names the topic as SourceArn")

    # SNS -> another account's queue, confirmed by that account once it can assume this stack's
    # cross-account role: the role exists before SNS sends the confirmation request.
    queues = set(of_type("AWS::SQS::Queue"))
    cross_account_roles = {
        name for name, role in roles.items()
        if any("AWS" in (st.get("Principal") or {}) for st in statements(role["Properties"].get("AssumeRolePolicyDocument")))
    }
    for name, sub in of_type("AWS::SNS::Subscription").items():
        if sub["Properties"].get("Protocol") != "sqs" or refs(sub["Properties"].get("Endpoint")) & queues:
            continue
        missing = cross_account_roles - set(as_list(sub.get("DependsOn", [])))
        if missing:
            err("subscription-after-role", name, f"subscribes another account's queue before {', '.join(sorted(missing))} exists (DependsOn)")

    # SQS event source: visibility timeout at least six times the function timeout.
    for name, esm in of_type("AWS::Lambda::EventSourceMapping").items():
        fn = next(iter(refs(esm["Properties"]["FunctionName"])))
        for q in refs(esm["Properties"].get("EventSourceArn")) & queues:
            vis = res[q]["Properties"].get("VisibilityTimeout", 30)
            timeout = functions[fn]["Properties"].get("Timeout", FUNCTION_TIMEOUT_DEFAULT)
            if vis < 6 * timeout:
                err("sqs-visibility", q, f"VisibilityTimeout {vis} s < 6 x {fn}'s timeout {timeout} s")

    # Custom resources: CloudFormation waits long enough for every attempt, and no longer than an hour.
    for name, r in res.items():
        if not r["Type"].startswith("Custom::"):
            continue
        token = refs(r["Properties"].get("ServiceToken"))
        fn = next(iter(token & set(functions)), None)
        wait = r["Properties"].get("ServiceTimeout")
        if fn is None or wait is None:
            err("custom-resource-timeout", name, "a Lambda-backed custom resource with ServiceTimeout")
            continue
        timeout = functions[fn]["Properties"].get("Timeout", FUNCTION_TIMEOUT_DEFAULT)
        need = (1 + LAMBDA_ASYNC_RETRIES) * timeout + LAMBDA_RETRY_DELAYS_S
        if not (need <= int(wait) <= 3600):
            err("custom-resource-timeout", name, f"ServiceTimeout {wait} s must cover {need} s (3 attempts of {timeout} s) and stay <= 3600")

    # Logs: each function writes to a log group of the stack's, with a retention.
    for fn, f in functions.items():
        group = refs((f["Properties"].get("LoggingConfig") or {}).get("LogGroup")) & set(of_type("AWS::Logs::LogGroup"))
        if not group:
            err("log-group", fn, "logs go to a stack log group (LoggingConfig.LogGroup), not one Lambda creates without retention")
        for g in group:
            if "RetentionInDays" not in res[g]["Properties"]:
                err("log-group", g, "log groups have a retention")

    # PassRole: only to the service the roles are for.
    for name, role in roles.items():
        for s in role_statements(role):
            if s.get("Effect") == "Allow" and "iam:PassRole" in as_list(s.get("Action", [])):
                if "iam:PassedToService" not in s.get("Condition", {}).get("StringEquals", {}):
                    err("passrole", name, "iam:PassRole is limited with iam:PassedToService")

    # Data: the table outlives the stack, is recoverable and encrypted.
    for name, table in of_type("AWS::DynamoDB::Table").items():
        if table.get("DeletionPolicy") != "Retain" or table.get("UpdateReplacePolicy") != "Retain":
            err("table-data", name, "tables are retained on delete and replace")
        p = table["Properties"]
        if not p.get("PointInTimeRecoverySpecification", {}).get("PointInTimeRecoveryEnabled"):
            err("table-data", name, "point-in-time recovery on")
        if not p.get("SSESpecification", {}).get("SSEEnabled"):
            err("table-data", name, "SSE with KMS on")
    for name, q in of_type("AWS::SQS::Queue").items():
        if not (q["Properties"].get("SqsManagedSseEnabled") or q["Properties"].get("KmsMasterKeyId")):
            err("queue-encrypted", name, "queues are encrypted")

    # Queues a service sends to: only named sources (a queue policy for sns.amazonaws.com
    # without aws:SourceArn would take any account's topic); SNS of every region may deliver to
    # a queue that takes topics of any region (opt-in regions use their own principal).
    optin_needed = {"sns.amazonaws.com"} | {f"sns.{r}.amazonaws.com" for r in SNS_OPT_IN_REGIONS}
    for name, qp in of_type("AWS::SQS::QueuePolicy").items():
        for st in statements(qp["Properties"].get("PolicyDocument")):
            principal = st.get("Principal")
            if st.get("Effect") != "Allow" or not isinstance(principal, dict) or "Service" not in principal:
                continue
            cond = st.get("Condition", {})
            sources = [cond[op]["aws:SourceArn"] for op in ("ArnLike", "ArnEquals") if "aws:SourceArn" in cond.get(op, {})]
            if not sources:
                who = principal["Service"] if isinstance(principal["Service"], (str, list)) else "a service"
                err("queue-policy-source", name, f"a queue policy for {who} names the sending resources (aws:SourceArn)")
                continue
            try:
                arns = [a for src in sources for a in as_list(resolve(src, values))]
            except Unresolved:
                arns = [json.dumps(sources)]  # a resource's ARN: its region is not "*"
            if not any(":sns:" in a for a in arns) or not any(a.split(":")[3:4] in (["*"], [""]) for a in arns):
                continue
            try:
                svc = set(as_list(resolve(principal["Service"], values)))
            except Unresolved as e:
                err("opt-in-principals", name, f"the service principals of a queue policy for SNS topics of any region cannot be evaluated ({e})")
                continue
            missing = sorted(optin_needed - svc)
            if missing:
                err("opt-in-principals", name, f"takes SNS topics of any region but does not allow {', '.join(missing)}")

    # IoT's roles: confused-deputy conditions.
    for name, role in roles.items():
        for s in statements(role["Properties"].get("AssumeRolePolicyDocument")):
            if "iot.amazonaws.com" in as_list((s.get("Principal") or {}).get("Service", [])):
                cond = s.get("Condition", {})
                if "aws:SourceAccount" not in cond.get("StringEquals", {}) or "aws:SourceArn" not in cond.get("ArnLike", {}):
                    err("iot-trust", name, "trust of iot.amazonaws.com is scoped with aws:SourceAccount and aws:SourceArn")

    # A member template: its audit setup never in the hub's own account-region, and everywhere else.
    if is_member(t):
        hub, other = "999988887777", "111122223333"
        if "HubRegion" not in (t.get("Parameters") or {}):
            err("hub-account-region", "Parameters", "a member template names the hub's region (HubRegion) to skip its audit setup there")
        else:
            cases = [
                (dict(HubAccountId=hub, HubRegion="us-east-1", **{"AWS::AccountId": hub, "AWS::Region": "us-east-1"}), False, "in the hub's account-region"),
                (dict(HubAccountId=hub, HubRegion="us-east-1", **{"AWS::AccountId": other, "AWS::Region": "us-east-1"}), True, "in another account of the hub's region"),
                (dict(HubAccountId=hub, HubRegion="us-east-1", **{"AWS::AccountId": hub, "AWS::Region": "eu-west-1"}), True, "in the hub's account, another region"),
            ]
            for name, r in res.items():
                if r["Type"] not in ("AWS::IoT::AccountAuditConfiguration", "AWS::IoT::ScheduledAudit"):
                    continue
                cond = r.get("Condition")
                for overrides, want, where in cases:
                    try:
                        got = True if cond is None else condition_holds(t, cond, parameter_values(t, **overrides))
                    except Unresolved as e:
                        err("hub-account-region", name, f"condition {cond} cannot be evaluated ({e})")
                        break
                    if got != want:
                        err("hub-account-region", name, f"{'created' if got else 'skipped'} {where}")

    # The scheduled audit's day fields: the template's Rules refuse what CreateScheduledAudit (or
    # config-sync) would refuse only after the rest of the stack was created.
    params = t.get("Parameters") or {}
    if all(p in params for p in SCHEDULE_PARAMS):
        freq_p, dow_p, dom_p = SCHEDULE_PARAMS
        try:
            for freq in ("DAILY", "WEEKLY", "BIWEEKLY", "MONTHLY"):
                for dow in ("", "MON"):
                    for dom in ("", "15"):
                        refused = failed_rules(t, rule_values(t, **{freq_p: freq, dow_p: dow, dom_p: dom}))
                        weekly, monthly = freq in ("WEEKLY", "BIWEEKLY"), freq == "MONTHLY"
                        missing = (weekly and not dow) or (monthly and not dom)
                        unused = (dow and not weekly) or (dom and not monthly)
                        case = f"{freq} with {dow_p}={dow!r}, {dom_p}={dom!r}"
                        if missing and not refused:
                            err("schedule-day-required", "Rules", f"{case} is not refused (its day field is required)")
                        elif unused and not missing and not refused:
                            err("schedule-day-unused", "Rules", f"{case} is not refused (a day field of another frequency)")
                        elif not missing and not unused and refused:
                            err("schedule-day-unused", "Rules", f"{case} is a valid schedule but refused: {refused}")
        except Unresolved as e:
            err("schedule-day-required", "Rules", f"the template's Rules cannot be evaluated ({e})")

    # A member's hub-access role: exactly the hub's roles, within the organization.
    if is_member(t):
        hub = "999988887777"
        member_values = parameter_values(t, HubAccountId=hub)
        for name, role in roles.items():
            for st in statements(role["Properties"].get("AssumeRolePolicyDocument")):
                principal = st.get("Principal")
                aws = principal.get("AWS") if isinstance(principal, dict) else principal
                if st.get("Effect") != "Allow" or aws is None:
                    continue
                try:
                    who = as_list(resolve(aws, member_values))
                except Unresolved:
                    who = [json.dumps(aws)]
                if who != [f"arn:aws:iam::{hub}:root"]:
                    err("hub-trust", name, f"trusts {who}, not exactly the hub account's root narrowed to the hub's roles")
                cond = st.get("Condition", {})
                arns = [cond[op]["aws:PrincipalArn"] for op in ("ArnEquals", "ArnLike") if "aws:PrincipalArn" in cond.get(op, {})]
                if not arns:
                    err("hub-trust", name, "trust of the hub account is not narrowed to the hub's roles (ArnEquals aws:PrincipalArn)")
                elif not all(refs(a) == {"HubPrincipalArns"} for a in arns):
                    err("hub-trust", name, f"aws:PrincipalArn is {arns}, not the hub's HubPrincipalArns")
                if "aws:PrincipalOrgID" not in cond.get("StringEquals", {}):
                    err("hub-trust", name, "trust of the hub account is not limited to the organization (StringEquals aws:PrincipalOrgID)")

    # A hub: the roles that assume members' roles are exactly those its HubPrincipalArns output names.
    assuming = {
        name for name, role in roles.items()
        if any(st.get("Effect") == "Allow" and "sts:AssumeRole" in as_list(st.get("Action", [])) for st in role_statements(role))
    }
    if assuming:
        output = (t.get("Outputs") or {}).get("HubPrincipalArns")
        named = refs(output["Value"]) if output else set()
        if output is None:
            err("hub-principals", "Outputs", f"no HubPrincipalArns output, though {', '.join(sorted(assuming))} assume members' roles")
        for role in sorted(assuming - named):
            err("hub-principals", "HubPrincipalArns", f"{role} assumes members' roles but is not in the HubPrincipalArns output")
        for role in sorted(named - assuming):
            err("hub-principals", "HubPrincipalArns", f"names {role}, which assumes no member's role")

    # The fan-in queue: topics of any account are refused unless they are the organization's.
    for name, qp in of_type("AWS::SQS::QueuePolicy").items():
        stmts = statements(qp["Properties"].get("PolicyDocument"))
        takes_any_account = False
        for st in stmts:
            principal = st.get("Principal")
            if st.get("Effect") != "Allow" or not isinstance(principal, dict) or "Service" not in principal:
                continue
            cond = st.get("Condition", {})
            sources = [cond[op]["aws:SourceArn"] for op in ("ArnLike", "ArnEquals") if "aws:SourceArn" in cond.get(op, {})]
            try:
                arns = [a for src in sources for a in as_list(resolve(src, values))]
            except Unresolved:
                continue
            if any(":sns:" in a and a.split(":")[4:5] in (["*"], [""]) for a in arns):
                takes_any_account = True
                if "aws:SourceOrgID" in cond.get("StringEquals", {}):
                    takes_any_account = False  # restricted in the Allow itself
        if not takes_any_account:
            continue
        denies = [
            st for st in stmts
            if st.get("Effect") == "Deny"
            and any(a in ("sqs:SendMessage", "sqs:*") for a in as_list(st.get("Action", [])))
            and any("aws:SourceOrgID" in st.get("Condition", {}).get(op, {}) for op in ("StringNotEquals", "StringNotEqualsIfExists"))
        ]
        if not denies:
            err("queue-org", name, "takes SNS topics of any account but does not refuse topics outside the organization (aws:SourceOrgID)")
        for st in denies:
            if st.get("Condition", {}).get("Null", {}).get("aws:SourceAccount") != "false":
                err("queue-org", name, "denies on aws:SourceOrgID without the Null aws:SourceAccount guard: if SNS leaves the key out, every member is refused")
    return errors


def self_test(template):
    """Each rule fires on a copy of the template broken the way it guards against. Returns the
    failures and how many cases ran (cases for another kind of template are not run)."""
    kinds = {"sam"} if is_sam(template) else set()
    if is_member(template):
        kinds.add("member")

    def statement(r, resource, i=0):
        return r[resource]["Properties"]["PolicyDocument"]["Statement"][i]

    cases = [
        # (what, kinds, mutation of Resources (or of the whole template when `whole`), expected)
        ("AWS managed key on a topic alarms publish to", "sam",
         lambda t: t["Resources"]["DigestTopic"]["Properties"].update(KmsMasterKeyId="alias/aws/sns"),
         "DigestTopic: topics are encrypted with this stack's customer managed key when a service publishes"),
        ("an unencrypted topic", "member",
         lambda t: t["Resources"]["AuditNotificationTopic"]["Properties"].pop("KmsMasterKeyId"),
         "AuditNotificationTopic: topics are encrypted"),
        ("key policy without CloudWatch", "sam",
         lambda t: t["Resources"]["TopicKey"]["Properties"]["KeyPolicy"]["Statement"].pop(1),
         "must let cloudwatch.amazonaws.com kms:Decrypt"),
        ("no rotation", "sam", lambda t: t["Resources"]["TopicKey"]["Properties"].pop("EnableKeyRotation"), "rotate"),
        ("topic policy without CloudWatch", "sam",
         lambda t: t["Resources"]["DigestTopicPolicy"]["Properties"]["PolicyDocument"]["Statement"].pop(0),
         "policy must let cloudwatch.amazonaws.com sns:Publish"),
        ("publisher without the key", "sam member",
         lambda t: t["Resources"]["IotNotificationRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"].pop(1),
         "IotNotificationRole: publishes to AuditNotificationTopic but lacks"),
        ("KMS on \"*\" for any service", "member",
         lambda t: t["Resources"]["IotNotificationRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"][1].pop("Condition"),
         "IotNotificationRole: kms:GenerateDataKey*, kms:Decrypt on Resource \"*\""),
        ("a Scan", "sam",
         lambda t: t["Resources"]["AuditSweeperFunction"]["Properties"]["Policies"].append({"DynamoDBReadPolicy": {"TableName": {"Ref": "FindingsTable"}}}),
         "dynamodb:Scan"),
        ("short custom resource wait", "sam",
         lambda t: t["Resources"]["AuditConfiguration"]["Properties"].update(ServiceTimeout=300),
         "ServiceTimeout 300 s"),
        ("short visibility timeout", "sam",
         lambda t: t["Resources"]["ContinuationQueue"]["Properties"].update(VisibilityTimeout=960),
         "VisibilityTimeout 960"),
        ("log group without retention", "sam",
         lambda t: t["Resources"]["ConfigSyncLogGroup"]["Properties"].pop("RetentionInDays"),
         "ConfigSyncLogGroup: log groups have a retention"),
        ("PassRole to any service", "sam",
         lambda t: t["Resources"]["ConfigSyncFunction"]["Properties"]["Policies"][1]["Statement"][3].pop("Condition"),
         "iam:PassRole is limited"),
        ("alarms to a chat topic CloudWatch may not publish to", "sam",
         lambda t: t["Resources"].pop("ChatTopicPolicy"),
         "topic ChatTopic's policy must let cloudwatch.amazonaws.com sns:Publish"),
        ("a queue open to any topic", "sam",
         lambda t: statement(t["Resources"], "MemberNotificationQueuePolicy").pop("Condition"),
         "MemberNotificationQueuePolicy: a queue policy for"),
        ("the fan-in queue closed to opt-in regions", "sam",
         lambda t: statement(t["Resources"], "MemberNotificationQueuePolicy").update(Principal={"Service": "sns.amazonaws.com"}),
         "MemberNotificationQueuePolicy: takes SNS topics of any region but does not allow sns.af-south-1.amazonaws.com"),
        ("an opt-in region left out of OptInRegions", "sam",
         lambda t: t["Parameters"]["OptInRegions"].update(Default="af-south-1,ap-east-1"),
         "does not allow sns.ap-northeast-3.amazonaws.com"),
        ("unscoped IoT trust", "sam member",
         lambda t: t["Resources"]["AuditRole"]["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]["Condition"].pop("ArnLike"),
         "AuditRole: trust of iot.amazonaws.com"),
        ("a schedule named after its logical id", "sam",
         lambda t: t["Resources"]["AuditSweeperFunction"]["Properties"]["Events"]["Sweep"]["Properties"].pop("OmitName"),
         "AuditSweeperFunctionSweep: schedule named 'AuditSweeperFunctionSweep'"),
        ("a schedule with a fixed name", "sam",
         lambda t: (t["Resources"]["OrgRollupFunction"]["Properties"]["Events"]["Rollup"]["Properties"].pop("OmitName"),
                    t["Resources"]["OrgRollupFunction"]["Properties"]["Events"]["Rollup"]["Properties"].update(Name="org-rollup")),
         "OrgRollupFunctionRollup: schedule named 'org-rollup'"),
        ("the hub subscribed before its role exists", "member",
         lambda t: t["Resources"]["HubSubscription"].pop("DependsOn"),
         "HubSubscription: subscribes another account's queue before HubAccessRole exists"),
        ("the audit configuration in the hub's account-region", "member",
         lambda t: t["Resources"]["AuditConfiguration"].pop("Condition"),
         "AuditConfiguration: created in the hub's account-region"),
        ("the scheduled audit in the hub's account-region", "member",
         lambda t: t["Resources"]["ScheduledAudit"].pop("Condition"),
         "ScheduledAudit: created in the hub's account-region"),
        ("the audit setup skipped in every region of the hub's account", "member",
         lambda t: t["Conditions"].update(IsHubAccountRegion={"Fn::Equals": [{"Ref": "AWS::AccountId"}, {"Ref": "HubAccountId"}]}),
         "AuditConfiguration: skipped in the hub's account, another region"),
        ("a member template without the hub's region", "member",
         lambda t: t["Parameters"].pop("HubRegion"),
         "Parameters: a member template names the hub's region"),
        ("a WEEKLY audit without a day of week accepted", "sam member",
         lambda t: t["Rules"].pop("WeeklyAuditNeedsDayOfWeek"),
         "Rules: WEEKLY with ScheduledAuditDayOfWeek='', ScheduledAuditDayOfMonth='' is not refused (its day field is required)"),
        ("a MONTHLY audit without a day of month accepted", "sam member",
         lambda t: t["Rules"].pop("MonthlyAuditNeedsDayOfMonth"),
         "Rules: MONTHLY with ScheduledAuditDayOfWeek='', ScheduledAuditDayOfMonth='' is not refused (its day field is required)"),
        ("a day of month accepted for a BIWEEKLY audit", "sam member",
         lambda t: t["Rules"]["WeeklyAuditNeedsDayOfWeek"]["Assertions"].pop(1),
         "Rules: BIWEEKLY with ScheduledAuditDayOfWeek='MON', ScheduledAuditDayOfMonth='15' is not refused (a day field of another frequency)"),
        ("a valid DAILY audit refused", "sam member",
         lambda t: t["Rules"]["DailyAuditTakesNoDay"]["Assertions"][0].update(Assert={"Fn::Equals": ["a", "b"]}),
         "Rules: DAILY with ScheduledAuditDayOfWeek='', ScheduledAuditDayOfMonth='' is a valid schedule but refused"),
        ("the hub-access role trusting any role of the hub account", "member",
         lambda t: t["Resources"]["HubAccessRole"]["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]["Condition"].pop("ArnEquals"),
         "HubAccessRole: trust of the hub account is not narrowed to the hub's roles"),
        ("the hub-access role trusting the hub account outside the organization", "member",
         lambda t: t["Resources"]["HubAccessRole"]["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]["Condition"].pop("StringEquals"),
         "HubAccessRole: trust of the hub account is not limited to the organization"),
        ("the hub-access role trusting everyone", "member",
         lambda t: t["Resources"]["HubAccessRole"]["Properties"]["AssumeRolePolicyDocument"]["Statement"][0].update(Principal={"AWS": "*"}),
         "HubAccessRole: trusts ['*']"),
        ("the hub-access role trusting any ARN", "member",
         lambda t: t["Resources"]["HubAccessRole"]["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]["Condition"].update(
             ArnEquals={"aws:PrincipalArn": "arn:aws:iam::*:role/*"}),
         "HubAccessRole: aws:PrincipalArn is"),
        ("a hub role missing from HubPrincipalArns", "sam",
         lambda t: t["Outputs"]["HubPrincipalArns"].update(Value={"Fn::GetAtt": ["AuditNotificationFunctionRole", "Arn"]}),
         "HubPrincipalArns: OrgRollupFunctionRole assumes members' roles but is not in the HubPrincipalArns output"),
        ("the fan-in queue open to topics of any organization", "sam",
         lambda t: t["Resources"]["MemberNotificationQueuePolicy"]["Properties"]["PolicyDocument"]["Statement"].pop(1),
         "MemberNotificationQueuePolicy: takes SNS topics of any account but does not refuse topics outside the organization"),
        ("the organization check without its Null guard", "sam",
         lambda t: statement(t["Resources"], "MemberNotificationQueuePolicy", 1)["Condition"].pop("Null"),
         "MemberNotificationQueuePolicy: denies on aws:SourceOrgID without the Null aws:SourceAccount guard"),
    ]
    assert template["Resources"], "a template with resources"
    failures, ran = [], 0
    for what, for_kinds, mutate, expected in cases:
        if not kinds & set(for_kinds.split()):
            continue
        t = copy.deepcopy(template)
        try:
            mutate(t)
        except (KeyError, IndexError) as e:
            failures.append(f"self-test: {what}: the template no longer has what the case breaks ({e!r})")
            continue
        found = check(t)
        ran += 1
        if not any(expected in e for e in found):
            failures.append(f"self-test: {what} was not caught (expected {expected!r}; got {found})")
    return failures, ran


def list_rules():
    width = max(map(len, RULES))
    for rule, (kind, source, text) in RULES.items():
        print(f"{rule:<{width}}  {kind:<4}  {text}" + (f"\n{'':<{width}}        {source}" if source else ""))


def main(argv):
    logging.disable(logging.WARNING)  # the translator's own metrics chatter
    if "--list-rules" in argv:
        list_rules()
        return 0
    paths = [a for a in argv[1:] if not a.startswith("--")] or ["template.yaml"]
    failed = False
    for path in paths:
        template = yaml_parse(open(path).read())
        errors = check(template)
        ran = 0
        if "--self-test" in argv:
            more, ran = self_test(template)
            errors += more
        for e in errors:
            print(f"{path}: {e}")
        if not errors:
            print(f"{path}: every deploy rule holds" + (f" (and each of {ran} broken copies is caught)" if "--self-test" in argv else ""))
        failed = failed or bool(errors)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
