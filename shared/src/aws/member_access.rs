//! How a hub reaches a member's Device Defender: the hub's own account-region with the
//! function's credentials; any other through the member's hub-access role (STS `AssumeRole`,
//! credentials refreshed by the SDK before they expire), in the member's region.
//!
//! AWS facts this relies on (docs/reference/organization.md has the sources):
//! - `AssumeRole` answers `AccessDenied` when the role does not exist or does not trust the
//!   caller (STS does not tell the two apart), `RegionDisabledException` when STS is not
//!   activated in the region; both are the member's setup, not worth retrying.
//! - The role's default (and minimum) session is 1 hour; the SDK's identity cache refreshes
//!   credentials before they expire, so a 15-minute invocation never sees them lapse.

use crate::member::Member;
use crate::ports::PortError;
use aws_config::sts::AssumeRoleProvider;
use aws_sdk_iot::config::{ProvideCredentials, Region, SharedCredentialsProvider};
use aws_sdk_sts::operation::assume_role::AssumeRoleError;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

/// Opens the Device Defender API of any member.
#[derive(Clone, Debug)]
pub struct MemberAccess {
    /// The hub's own IoT client configuration (endpoint, retries): every member's starts from it.
    iot: aws_sdk_iot::Config,
    /// Where STS is called from (the hub's credentials, region and endpoint).
    sdk: aws_config::SdkConfig,
    home: Member,
    /// The hub-access role's name in every member (`None`: this hub reads only its own).
    role_name: Option<String>,
    partition: String,
}

impl MemberAccess {
    /// Access from a hub in `home` (its IoT client configuration `iot`, STS called with `sdk`),
    /// through the role `role_name` in each other member; `partition` is the ARN partition
    /// (`aws`, `aws-cn`, `aws-us-gov`).
    pub fn new(
        iot: aws_sdk_iot::Config,
        sdk: aws_config::SdkConfig,
        home: Member,
        role_name: Option<String>,
        partition: String,
    ) -> Self {
        MemberAccess { iot, sdk, home, role_name, partition }
    }

    /// The hub's own account-region.
    pub fn home(&self) -> &Member {
        &self.home
    }

    /// The role the hub assumes in `member`: `<role name>-<region>` (member.yaml creates one per
    /// region, IAM names being global to an account).
    pub fn role_arn(&self, member: &Member) -> Option<String> {
        let name = self.role_name.as_ref()?;
        Some(format!("arn:{}:iam::{}:role/{name}-{}", self.partition, member.account_id, member.region))
    }

    /// An IoT client for `member`: the hub's own client configuration for the hub's
    /// account-region; for another, credentials of its hub-access role (assumed once here, so
    /// that a role that cannot be assumed is reported now, with STS's reason) in its region.
    pub async fn iot_client(&self, member: &Member) -> Result<aws_sdk_iot::Client, PortError> {
        let mut config = self.iot.to_builder().region(Region::new(member.region.clone()));
        if member.account_id != self.home.account_id {
            let Some(role) = self.role_arn(member) else {
                return Err(PortError::Permanent(format!(
                    "member {member}: MEMBER_ROLE_NAME is not set, so this function reads only its own account {}",
                    self.home.account_id
                )));
            };
            let provider = AssumeRoleProvider::builder(role.clone())
                .session_name("device-defender-audit-hub")
                .configure(&self.sdk)
                .build()
                .await;
            if let Err(e) = provider.provide_credentials().await {
                return Err(assume_role_error(member, &role, &e));
            }
            config = config.credentials_provider(SharedCredentialsProvider::new(provider));
        }
        Ok(aws_sdk_iot::Client::from_conf(config.build()))
    }
}

impl MemberAccess {
    /// Confirms a subscription of one of the hub's queues to `topic_arn` with SNS's `token`
    /// (`ConfirmSubscription` in the topic's region; only the topic's and the subscription's
    /// owners may then unsubscribe it).
    pub async fn confirm_subscription(&self, topic_arn: &str, token: &str) -> Result<(), PortError> {
        let region = topic_arn.split(':').nth(3).unwrap_or_default().to_owned();
        let sns = aws_sdk_sns::Client::from_conf(
            aws_sdk_sns::config::Builder::from(&self.sdk).region(Region::new(region)).build(),
        );
        sns.confirm_subscription()
            .topic_arn(topic_arn)
            .token(token)
            .authenticate_on_unsubscribe("true")
            .send()
            .await
            .map_err(|e| crate::aws::classify("ConfirmSubscription", e))?;
        Ok(())
    }
}

impl crate::ports::SetupProbe for MemberAccess {
    async fn member_setup(&self, member: &Member) -> Result<crate::member::MemberSetup, PortError> {
        let iot = self.iot_client(member).await?;
        let out = iot
            .describe_account_audit_configuration()
            .send()
            .await
            .map_err(|e| crate::aws::classify("DescribeAccountAuditConfiguration", e))?;
        let target = out
            .audit_notification_target_configurations()
            .and_then(|t| t.get(&aws_sdk_iot::types::AuditNotificationType::Sns))
            .and_then(|t| Some((t.target_arn()?.to_owned(), t.enabled())));
        let enabled_checks =
            out.audit_check_configurations().map(|c| c.values().filter(|v| v.enabled()).count()).unwrap_or(0);
        Ok(crate::member::MemberSetup {
            role_arn: out.role_arn().map(str::to_owned),
            notification_target: target,
            enabled_checks,
        })
    }
}

/// Sorts an `AssumeRole` failure: the member's setup (permanent) or the moment (transient).
fn assume_role_error(member: &Member, role: &str, e: &(dyn std::error::Error + 'static)) -> PortError {
    let sdk = e.source().and_then(|s| s.downcast_ref::<SdkError<AssumeRoleError, HttpResponse>>());
    let detail = aws_smithy_types::error::display::DisplayErrorContext(e);
    match sdk {
        Some(SdkError::ServiceError(s)) => {
            let (code, msg) = (s.err().code().unwrap_or("Unknown"), s.err().message().unwrap_or(""));
            let text = format!("member {member}: cannot assume {role}: {code}: {msg}");
            match code {
                "Throttling" | "ThrottlingException" | "InternalFailure" | "ServiceUnavailable" => {
                    PortError::Transient(text)
                }
                _ => PortError::Permanent(text),
            }
        }
        _ => PortError::Transient(format!("member {member}: cannot assume {role}: {detail}")),
    }
}
