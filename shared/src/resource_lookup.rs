//! What a person types for a resource, turned into the stored resource keys it can mean.
//!
//! The history keys a finding's resource by its flattened identifier (see
//! [`crate::finding::resource_key`]): `policyVersionIdentifier.policyName=p|policyVersionIdentifier.policyVersionId=1`.
//! People type less: a field's short name (`policyName=p|policyVersionId=1`), the label a digest
//! prints (`p v1`, a thing's client id, a certificate id cut to 16 characters and `…`), or the
//! first characters of a certificate id. A [`ResourceLookup`] holds the keys asked for exactly
//! and, for when none of them is stored, the key prefixes to look for instead.

use crate::finding::resource_key;
use crate::suppression::identifier_fields;
use crate::vocabulary::ResourceType;
use std::collections::BTreeMap;

/// The one member of AWS's `ResourceIdentifier` that is no resource type's identifier (see
/// [`identifier_fields`]).
const DEVICE_CERTIFICATE_ARN: &str = "deviceCertificateArn";

/// The fields of AWS's `ResourceIdentifier`, flattened as the history stores them: each
/// resource type's identifier fields, and `deviceCertificateArn`.
pub fn known_fields() -> Vec<&'static str> {
    let mut fields: Vec<&'static str> = ResourceType::KNOWN.iter().flat_map(identifier_fields).copied().collect();
    fields.push(DEVICE_CERTIFICATE_ARN);
    fields.dedup();
    fields
}

/// The fields one value identifies a resource by: those of the types identified by one field.
fn single_fields() -> impl Iterator<Item = &'static str> {
    ResourceType::KNOWN
        .iter()
        .map(identifier_fields)
        .filter(|f| f.len() == 1)
        .map(|f| f[0])
        .chain([DEVICE_CERTIFICATE_ARN])
}

/// The fields whose values digests cut short (certificate ids, to 16 characters and `…`).
const CUT_FIELDS: [&str; 2] = ["deviceCertificateId", "caCertificateId"];

const POLICY_NAME: &str = "policyVersionIdentifier.policyName";
const POLICY_VERSION: &str = "policyVersionIdentifier.policyVersionId";

/// Why a typed resource names no key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LookupError {
    #[error("no resource given: type a key as digests print it (e.g. deviceCertificateId=ab12…) or a value")]
    Empty,
    #[error("'{0}' is not field=value")]
    NotPair(String),
    #[error("unknown resource field '{field}' (fields: {})", known_fields().join(", "))]
    UnknownField { field: String },
    #[error("field '{0}' is given twice")]
    Repeated(String),
}

/// The keys a typed resource can mean.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResourceLookup {
    /// Keys to look up exactly; any of them may be stored.
    pub exact: Vec<String>,
    /// When none of `exact` is stored: keys starting with one of these.
    pub prefixes: Vec<String>,
}

/// The stored field a typed field name means: itself, or the one stored field it ends
/// (`policyName` → `policyVersionIdentifier.policyName`).
fn field(name: &str) -> Option<&'static str> {
    known_fields().into_iter().find(|f| *f == name || f.rsplit('.').next() == Some(name))
}

/// The value without the mark of a cut (`…` or `...`), and whether it was cut.
fn uncut(value: &str) -> (&str, bool) {
    match value.strip_suffix('…').or_else(|| value.strip_suffix("...")) {
        Some(v) => (v, true),
        None => (value, false),
    }
}

/// Parses what a person typed for a resource (see the module documentation).
pub fn lookup(typed: &str) -> Result<ResourceLookup, LookupError> {
    let typed = typed.trim();
    if typed.is_empty() {
        return Err(LookupError::Empty);
    }
    if typed.contains('=') {
        return lookup_pairs(typed);
    }
    let (value, cut) = uncut(typed);
    let mut found = ResourceLookup::default();
    if !cut {
        found.exact = single_fields().map(|f| format!("{f}={value}")).collect();
        // A policy as digests label it: `<name> v<version>`.
        if let Some((name, version)) = value
            .rsplit_once(" v")
            .filter(|(n, v)| !n.is_empty() && !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
        {
            found.exact.push(format!("{POLICY_NAME}={name}|{POLICY_VERSION}={version}"));
        }
        // Every version of a policy of that name.
        found.prefixes.push(format!("{POLICY_NAME}={value}|"));
    }
    found.prefixes.extend(CUT_FIELDS.iter().map(|f| format!("{f}={value}")));
    Ok(found)
}

fn lookup_pairs(typed: &str) -> Result<ResourceLookup, LookupError> {
    let mut pairs = BTreeMap::new();
    let mut cut = false;
    for part in typed.split('|') {
        let (name, value) = part.split_once('=').ok_or_else(|| LookupError::NotPair(part.to_owned()))?;
        let name = field(name.trim()).ok_or_else(|| LookupError::UnknownField { field: name.trim().to_owned() })?;
        let (value, was_cut) = uncut(value.trim());
        cut |= was_cut;
        if pairs.insert(name.to_owned(), value.to_owned()).is_some() {
            return Err(LookupError::Repeated(name.to_owned()));
        }
    }
    let key = resource_key(&pairs);
    // A policy named without its version: each of its versions.
    if pairs.len() == 1 && pairs.contains_key(POLICY_NAME) && !cut {
        return Ok(ResourceLookup { exact: Vec::new(), prefixes: vec![format!("{key}|")] });
    }
    if cut {
        return Ok(ResourceLookup { exact: Vec::new(), prefixes: vec![key] });
    }
    Ok(ResourceLookup { exact: vec![key.clone()], prefixes: vec![key] })
}

/// Whether the distinct `keys` found are one resource or the versions of one policy (what a
/// typed key may name at once); otherwise the typed key was ambiguous.
pub fn one_resource(keys: &[&str]) -> bool {
    let policy = |k: &str| -> Option<String> {
        k.split('|').find_map(|p| p.strip_prefix(POLICY_NAME).and_then(|r| r.strip_prefix('=')).map(str::to_owned))
    };
    match keys {
        [] | [_] => true,
        [first, rest @ ..] => policy(first).is_some_and(|p| rest.iter().all(|k| policy(k).as_deref() == Some(&p))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_field_names_and_any_order_give_the_stored_key() {
        let stored = "policyVersionIdentifier.policyName=p|policyVersionIdentifier.policyVersionId=1";
        for typed in [
            stored,
            "policyName=p|policyVersionId=1",
            "policyVersionId=1|policyName=p",
            " policyName = p | policyVersionId=1 ",
        ] {
            assert_eq!(lookup(typed).unwrap().exact, vec![stored.to_owned()], "{typed}");
        }
        assert_eq!(lookup("deviceCertificateId=ab12").unwrap().exact, vec!["deviceCertificateId=ab12".to_owned()]);
        assert_eq!(
            lookup("policyName=p").unwrap(),
            ResourceLookup { exact: vec![], prefixes: vec!["policyVersionIdentifier.policyName=p|".into()] }
        );
    }

    #[test]
    fn what_digests_print_is_understood() {
        let cut = lookup("49433105b942388e…").unwrap();
        assert!(cut.exact.is_empty());
        assert_eq!(cut.prefixes, ["deviceCertificateId=49433105b942388e", "caCertificateId=49433105b942388e"]);
        assert_eq!(lookup("deviceCertificateId=4943...").unwrap().prefixes, ["deviceCertificateId=4943"]);
        let label = lookup("p v2").unwrap();
        assert!(label
            .exact
            .contains(&"policyVersionIdentifier.policyName=p|policyVersionIdentifier.policyVersionId=2".to_owned()));
        let thing = lookup("thermostat-42").unwrap();
        assert!(thing.exact.contains(&"clientId=thermostat-42".to_owned()));
        assert!(thing.prefixes.contains(&"policyVersionIdentifier.policyName=thermostat-42|".to_owned()));
    }

    #[test]
    fn the_fields_are_the_service_model_s_resource_identifier() {
        // ResourceIdentifier, PolicyVersionIdentifier and IssuerCertificateIdentifier of the
        // IoT service model, flattened.
        let mut model = vec![
            "deviceCertificateId",
            "caCertificateId",
            "cognitoIdentityPoolId",
            "clientId",
            "policyVersionIdentifier.policyName",
            "policyVersionIdentifier.policyVersionId",
            "account",
            "iamRoleArn",
            "roleAliasArn",
            "issuerCertificateIdentifier.issuerCertificateSubject",
            "issuerCertificateIdentifier.issuerId",
            "issuerCertificateIdentifier.issuerCertificateSerialNumber",
            "deviceCertificateArn",
        ];
        let mut known = known_fields();
        known.sort();
        model.sort();
        assert_eq!(known, model);
        let single: Vec<&str> = single_fields().collect();
        assert!(single.contains(&"clientId") && !single.iter().any(|f| f.contains('.')), "{single:?}");
    }

    #[test]
    fn mistakes_are_named() {
        assert_eq!(lookup("  "), Err(LookupError::Empty));
        assert_eq!(lookup("thing=x"), Err(LookupError::UnknownField { field: "thing".into() }));
        assert!(lookup("thing=x").unwrap_err().to_string().contains("deviceCertificateId"));
        assert_eq!(lookup("clientId=a|junk"), Err(LookupError::NotPair("junk".into())));
        assert_eq!(lookup("clientId=a|clientId=b"), Err(LookupError::Repeated("clientId".into())));
    }

    #[test]
    fn versions_of_one_policy_are_one_answer() {
        let v = |n: &str, v: u32| format!("{POLICY_NAME}={n}|{POLICY_VERSION}={v}");
        assert!(one_resource(&[&v("p", 1), &v("p", 2)]));
        assert!(!one_resource(&[&v("p", 1), &v("p2", 1)]));
        assert!(!one_resource(&["deviceCertificateId=ab", "deviceCertificateId=ac"]));
        assert!(one_resource(&["clientId=x"]));
    }
}
