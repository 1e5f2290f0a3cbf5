//! `resource`: finds the episodes of what a person typed for a resource (see
//! [`audit_shared::resource_lookup`]): the keys it means exactly, else the keys starting with
//! it; several different resources are refused, naming them.

use crate::commands::CommandError;
use audit_shared::aws::dynamodb::DynamoEpisodeStore;
use audit_shared::ports::Episode;
use audit_shared::resource_lookup::{lookup, one_resource};
use std::collections::BTreeSet;

/// Keys named at most when a typed resource matches several.
const NAMED: usize = 3;

/// The episodes of the one resource `typed` names (several versions of one policy count as one).
pub async fn episodes(store: &DynamoEpisodeStore, typed: &str, quiet: bool) -> Result<Vec<Episode>, CommandError> {
    let wanted = lookup(typed)?;
    let mut found = Vec::new();
    for key in &wanted.exact {
        found.extend(store.resource_history(key).await?);
    }
    if found.is_empty() && !wanted.prefixes.is_empty() {
        if !quiet {
            eprintln!("no resource key is exactly '{typed}': looking for keys that start with it (reads the whole byResource index)");
        }
        let mut next_note = 100_000;
        found = store
            .resources_starting_with(&wanted.prefixes, |read| {
                if !quiet && read >= next_note {
                    eprintln!("… {read} index items read");
                    next_note = read + 100_000;
                }
            })
            .await?;
    }
    let keys: BTreeSet<&str> = found.iter().map(|e| e.resource_key.as_str()).collect();
    if keys.is_empty() {
        return Err(CommandError::NoResource(typed.to_owned()));
    }
    let keys: Vec<&str> = keys.into_iter().collect();
    if !one_resource(&keys) {
        let mut named: Vec<String> = keys.iter().take(NAMED).map(|k| k.to_string()).collect();
        if keys.len() > NAMED {
            named.push(format!("and {} more", keys.len() - NAMED));
        }
        return Err(CommandError::SeveralResources {
            typed: typed.to_owned(),
            count: keys.len(),
            keys: named.join(", "),
        });
    }
    Ok(found)
}
