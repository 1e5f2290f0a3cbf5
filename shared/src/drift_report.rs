//! The drift report config-sync publishes on the digest topic when the account's audit setup no
//! longer matches the stack: a subject (≤ 100 characters), a plain-text body, and the `kind`
//! message attribute (`drift`) subscribers filter on. Pure.

use crate::digest::MAX_SUBJECT_CHARS;
use std::fmt::Write;

/// A drift report, ready to publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DriftReport {
    /// Mail subject, at most [`MAX_SUBJECT_CHARS`] characters.
    pub subject: String,
    /// Plain-text body: one line per difference and what to do.
    pub body: String,
    /// SNS message attributes: `kind` = `drift`.
    pub attributes: Vec<(String, &'static str, String)>,
}

/// The report of the differences `found` between the account and stack `stack`'s declared
/// setup; `repaired` when the declared setup was applied again.
pub fn drift_report(stack: &str, found: &[String], repaired: bool) -> DriftReport {
    let subject: String = format!(
        "Audit setup drift: {} difference{}{}",
        found.len(),
        if found.len() == 1 { "" } else { "s" },
        if repaired { " (repaired)" } else { "" }
    )
    .chars()
    .take(MAX_SUBJECT_CHARS)
    .collect();
    let mut body = format!("The account's Device Defender audit setup differs from stack {stack}:\n\n");
    for f in found {
        let _ = writeln!(body, "  - {f}");
    }
    body.push_str(if repaired {
        "\nThe declared setup was applied again (DRIFT_AUTO_REPAIR=true).\n"
    } else {
        "\nRun a stack update, or set the DriftAutoRepair parameter to true, to restore the declared setup.\n"
    });
    DriftReport { subject, body, attributes: vec![("kind".to_owned(), "String", "drift".to_owned())] }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_every_difference_and_says_what_to_do() {
        let found = vec!["check X is disabled".to_owned(), "scheduled audit a is missing".to_owned()];
        let r = drift_report("arn:stack/s/1", &found, false);
        assert_eq!(r.subject, "Audit setup drift: 2 differences");
        assert!(r.body.contains("  - check X is disabled\n  - scheduled audit a is missing\n"));
        assert!(r.body.contains("DriftAutoRepair"));
        assert_eq!(r.attributes, vec![("kind".to_owned(), "String", "drift".to_owned())]);
        let r = drift_report("s", &found[..1], true);
        assert_eq!(r.subject, "Audit setup drift: 1 difference (repaired)");
        assert!(r.body.contains("applied again"));
    }
}
