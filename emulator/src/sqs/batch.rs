//! SendMessageBatch and DeleteMessageBatch: up to ten entries with distinct ids
//! (alphanumerics, hyphens and underscores, at most 80), each succeeding or failing on its
//! own; a request breaking those rules fails whole with `EmptyBatchRequest`,
//! `TooManyEntriesInBatchRequest`, `BatchEntryIdsNotDistinct` or `InvalidBatchEntryId`, and
//! one whose messages together exceed the message size limit with `BatchRequestTooLong`.
//! Sources: `docs/reference/emulator-services.md`.

use super::messages::{checked_body, parse_attributes, sent};
use super::{str_field, Sqs, SqsError};
use serde_json::{json, Value};

/// Entries a batch may hold.
pub const MAX_ENTRIES: usize = 10;

/// Bytes the message bodies of one SendMessageBatch may total (the message size limit).
const MAX_BATCH_BYTES: usize = 262_144;

/// The entries of a batch request, checked as a whole.
fn entries(body: &Value) -> Result<&Vec<Value>, SqsError> {
    let entries = match body.get("Entries") {
        Some(Value::Array(e)) => e,
        None | Some(Value::Null) => {
            return Err(SqsError::new("MissingParameter", "The request must contain the parameter Entries."))
        }
        Some(_) => return Err(SqsError::new("InvalidParameterValue", "Entries must be a list")),
    };
    if entries.is_empty() {
        return Err(SqsError::new(
            "EmptyBatchRequest",
            "There should be at least one SendMessageBatchRequestEntry in the request.",
        ));
    }
    if entries.len() > MAX_ENTRIES {
        return Err(SqsError::new(
            "TooManyEntriesInBatchRequest",
            format!("Maximum number of entries per request are {MAX_ENTRIES}. You have sent {}.", entries.len()),
        ));
    }
    let mut seen: Vec<&str> = Vec::new();
    for e in entries {
        let id = e.get("Id").and_then(Value::as_str).unwrap_or_default();
        if id.is_empty() || id.len() > 80 || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
            return Err(SqsError::new(
                "InvalidBatchEntryId",
                "A batch entry id can only contain alphanumeric characters, hyphens and underscores. It can be at most 80 letters long.",
            ));
        }
        if seen.contains(&id) {
            return Err(SqsError::new("BatchEntryIdsNotDistinct", format!("Id {id} repeated.")));
        }
        seen.push(id);
    }
    Ok(entries)
}

fn failure(id: &str, e: SqsError) -> Value {
    json!({ "Id": id, "SenderFault": true, "Code": e.code, "Message": e.message })
}

impl Sqs {
    pub(super) fn send_message_batch(&mut self, body: &Value, now_ms: i64, sender: &str) -> Result<Value, SqsError> {
        let name = self.name_of(body)?;
        let entries = entries(body)?.clone();
        let total: usize =
            entries.iter().filter_map(|e| e.get("MessageBody").and_then(Value::as_str)).map(str::len).sum();
        if total > MAX_BATCH_BYTES {
            return Err(SqsError::new(
                "BatchRequestTooLong",
                format!("Batch requests cannot be longer than {MAX_BATCH_BYTES} bytes. You have sent {total} bytes."),
            ));
        }
        let default_delay = self.queues[&name].number("DelaySeconds");
        let (mut ok, mut failed) = (Vec::new(), Vec::new());
        for e in &entries {
            let id = e["Id"].as_str().unwrap_or_default();
            let checked =
                checked_body(e, default_delay).and_then(|(text, delay)| Ok((text, delay, parse_attributes(e)?)));
            match checked {
                Ok((text, delay, attributes)) => {
                    let m = self.push(&name, text, attributes, Some(delay), sender, now_ms);
                    let mut entry = sent(&m.id, &m);
                    entry.insert("Id".into(), json!(id));
                    ok.push(Value::Object(entry));
                }
                Err(err) => failed.push(failure(id, err)),
            }
        }
        Ok(json!({ "Successful": ok, "Failed": failed }))
    }

    pub(super) fn delete_message_batch(&mut self, body: &Value) -> Result<Value, SqsError> {
        let name = self.name_of(body)?;
        let entries = entries(body)?.clone();
        let (mut ok, mut failed) = (Vec::new(), Vec::new());
        for e in &entries {
            let id = e["Id"].as_str().unwrap_or_default();
            match str_field(e, "ReceiptHandle") {
                Ok(receipt) if self.delete(&name, receipt) => ok.push(json!({ "Id": id })),
                Ok(receipt) => failed.push(failure(
                    id,
                    SqsError::new(
                        "ReceiptHandleIsInvalid",
                        format!("The input receipt handle \"{receipt}\" is not a valid receipt handle."),
                    ),
                )),
                Err(err) => failed.push(failure(id, err)),
            }
        }
        Ok(json!({ "Successful": ok, "Failed": failed }))
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::sqs_with;
    use super::*;

    #[test]
    fn batches_answer_per_entry_and_refuse_bad_requests_whole() {
        let (mut sqs, url) = sqs_with("q");
        let batch = json!({ "QueueUrl": url, "Entries": [
            { "Id": "a", "MessageBody": "one" },
            { "Id": "b", "MessageBody": "" },
            { "Id": "c", "MessageBody": "three", "MessageAttributes": { "k": { "DataType": "String", "StringValue": "v" } } },
        ]});
        let r = sqs.handle("SendMessageBatch", &batch, 0, "me").unwrap();
        let ids: Vec<&str> = r["Successful"].as_array().unwrap().iter().map(|e| e["Id"].as_str().unwrap()).collect();
        assert_eq!(ids, ["a", "c"]);
        assert!(
            r["Successful"][1]["MD5OfMessageAttributes"].is_string()
                && r["Successful"][0].get("MD5OfMessageAttributes").is_none()
        );
        assert_eq!((r["Failed"][0]["Id"].as_str(), r["Failed"][0]["SenderFault"].as_bool()), (Some("b"), Some(true)));
        let code = |sqs: &mut Sqs, action: &str, entries: Value| {
            sqs.handle(action, &json!({ "QueueUrl": url, "Entries": entries }), 0, "me").unwrap_err().code
        };
        assert_eq!(code(&mut sqs, "SendMessageBatch", json!([])), "EmptyBatchRequest");
        let eleven: Vec<Value> = (0..11).map(|i| json!({ "Id": format!("m{i}"), "MessageBody": "x" })).collect();
        assert_eq!(code(&mut sqs, "SendMessageBatch", json!(eleven)), "TooManyEntriesInBatchRequest");
        let twice = json!([{ "Id": "a", "MessageBody": "x" }, { "Id": "a", "MessageBody": "y" }]);
        assert_eq!(code(&mut sqs, "SendMessageBatch", twice), "BatchEntryIdsNotDistinct");
        assert_eq!(
            code(&mut sqs, "SendMessageBatch", json!([{ "Id": "a b", "MessageBody": "x" }])),
            "InvalidBatchEntryId"
        );
        let big = "x".repeat(200_000);
        let long = json!([{ "Id": "a", "MessageBody": big }, { "Id": "b", "MessageBody": big }]);
        assert_eq!(code(&mut sqs, "SendMessageBatch", long), "BatchRequestTooLong");
        let got = sqs.receive("q", 10, None, 0);
        assert_eq!(got.len(), 2);
        let del = json!([{ "Id": "x", "ReceiptHandle": got[0].receipt }, { "Id": "y", "ReceiptHandle": "nope" }]);
        let r = sqs.handle("DeleteMessageBatch", &json!({ "QueueUrl": url, "Entries": del }), 0, "me").unwrap();
        assert_eq!(r["Successful"], json!([{ "Id": "x" }]));
        assert_eq!(r["Failed"][0]["Code"], "ReceiptHandleIsInvalid");
        assert_eq!(code(&mut sqs, "DeleteMessageBatch", json!([])), "EmptyBatchRequest");
    }
}
