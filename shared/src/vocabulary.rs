//! The audit API's enumerations, as types that tolerate values they do not know.
//!
//! AWS adds checks, statuses and resource types over time. Every enum here therefore has an
//! `Unknown(String)` variant that keeps the wire value, so a new value is carried through
//! (stored, shown, counted) instead of failing a parse. Serialisation writes the wire string back.

use std::fmt;

/// Declares an enum of known wire strings plus `Unknown(String)`, with `as_str`, `parse`,
/// `Display`, `FromStr` (never fails) and serde as a plain string.
macro_rules! open_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $wire:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
            /// A value this build does not know, kept verbatim.
            Unknown(String),
        }

        impl $name {
            /// Every value this build knows, in declaration order.
            pub const KNOWN: &'static [$name] = &[$($name::$variant),+];

            /// The wire string.
            pub fn as_str(&self) -> &str {
                match self {
                    $($name::$variant => $wire,)+
                    $name::Unknown(s) => s.as_str(),
                }
            }

            /// Maps a wire string to its variant; anything else becomes `Unknown`.
            pub fn parse(s: &str) -> Self {
                match s {
                    $($wire => $name::$variant,)+
                    other => $name::Unknown(other.to_owned()),
                }
            }

            /// The known variant for `s`, or `None`: for strict validation (the emulator).
            pub fn parse_known(s: &str) -> Option<Self> {
                match Self::parse(s) {
                    $name::Unknown(_) => None,
                    known => Some(known),
                }
            }

            /// True for values this build does not know.
            pub fn is_unknown(&self) -> bool {
                matches!(self, $name::Unknown(_))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = std::convert::Infallible;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Ok(Self::parse(s))
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                Ok(Self::parse(&s))
            }
        }
    };
}

open_enum!(
    /// `AuditTaskStatus`.
    TaskStatus {
        InProgress => "IN_PROGRESS",
        Completed => "COMPLETED",
        Failed => "FAILED",
        Canceled => "CANCELED",
    }
);

impl TaskStatus {
    /// COMPLETED, FAILED and CANCELED: the task will not change any more.
    pub fn is_terminal(&self) -> bool {
        matches!(self, TaskStatus::Completed | TaskStatus::Failed | TaskStatus::Canceled)
    }
}

open_enum!(
    /// `AuditTaskType`.
    TaskType {
        OnDemand => "ON_DEMAND_AUDIT_TASK",
        Scheduled => "SCHEDULED_AUDIT_TASK",
    }
);

open_enum!(
    /// `AuditCheckRunStatus`.
    CheckRunStatus {
        InProgress => "IN_PROGRESS",
        WaitingForDataCollection => "WAITING_FOR_DATA_COLLECTION",
        Canceled => "CANCELED",
        CompliantCompleted => "COMPLETED_COMPLIANT",
        NonCompliantCompleted => "COMPLETED_NON_COMPLIANT",
        Failed => "FAILED",
    }
);

impl CheckRunStatus {
    /// True while the check has not produced its result yet.
    pub fn is_running(&self) -> bool {
        matches!(self, CheckRunStatus::InProgress | CheckRunStatus::WaitingForDataCollection)
    }
}

open_enum!(
    /// `AuditFindingSeverity`, most severe first (the derived `Ord` follows that order).
    Severity {
        Critical => "CRITICAL",
        High => "HIGH",
        Medium => "MEDIUM",
        Low => "LOW",
    }
);

open_enum!(
    /// `ResourceType` of a non-compliant or related resource.
    ResourceType {
        DeviceCertificate => "DEVICE_CERTIFICATE",
        CaCertificate => "CA_CERTIFICATE",
        IotPolicy => "IOT_POLICY",
        CognitoIdentityPool => "COGNITO_IDENTITY_POOL",
        ClientId => "CLIENT_ID",
        AccountSettings => "ACCOUNT_SETTINGS",
        RoleAlias => "ROLE_ALIAS",
        IamRole => "IAM_ROLE",
        IssuerCertificate => "ISSUER_CERTIFICATE",
    }
);

open_enum!(
    /// `AuditFrequency` of a scheduled audit.
    Frequency {
        Daily => "DAILY",
        Weekly => "WEEKLY",
        Biweekly => "BIWEEKLY",
        Monthly => "MONTHLY",
    }
);

open_enum!(
    /// `DayOfWeek` of a weekly or biweekly scheduled audit.
    DayOfWeek {
        Sun => "SUN",
        Mon => "MON",
        Tue => "TUE",
        Wed => "WED",
        Thu => "THU",
        Fri => "FRI",
        Sat => "SAT",
    }
);

impl DayOfWeek {
    /// Days since Sunday (SUN = 0 … SAT = 6); `None` for an unknown value.
    pub fn days_from_sunday(&self) -> Option<u32> {
        Self::KNOWN.iter().position(|d| d == self).map(|p| p as u32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values_round_trip_and_unknown_values_are_kept() {
        for s in TaskStatus::KNOWN {
            assert_eq!(&TaskStatus::parse(s.as_str()), s);
        }
        let v: Severity = serde_json::from_str("\"CATASTROPHIC\"").unwrap();
        assert_eq!(v, Severity::Unknown("CATASTROPHIC".into()));
        assert_eq!(serde_json::to_string(&v).unwrap(), "\"CATASTROPHIC\"");
        assert!(TaskType::parse_known("SCHEDULED__AUDIT_TASK").is_none());
    }

    #[test]
    fn severity_orders_most_severe_first() {
        let mut v = vec![Severity::Low, Severity::Critical, Severity::Medium, Severity::High];
        v.sort();
        assert_eq!(v, vec![Severity::Critical, Severity::High, Severity::Medium, Severity::Low]);
    }

    #[test]
    fn day_of_week_counts_from_sunday() {
        assert_eq!(DayOfWeek::Sun.days_from_sunday(), Some(0));
        assert_eq!(DayOfWeek::Sat.days_from_sunday(), Some(6));
        assert_eq!(DayOfWeek::parse("XYZ").days_from_sunday(), None);
    }
}
