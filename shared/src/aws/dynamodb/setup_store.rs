//! [`crate::ports::SetupStore`] over `aws-sdk-dynamodb`, in the findings table.

use super::{expires_in, is_condition_failed, key, n, put, s};
use crate::aws::classify;
use crate::ports::PortError;
use aws_sdk_dynamodb::types::AttributeValue;
use std::time::{SystemTime, UNIX_EPOCH};

/// [`crate::ports::SetupStore`] in the same table: `CONFIG#<stackId>` / `STATE` (the record as
/// JSON), `CONFIG#<stackId>` / `DRIFT#<ms>` (drift records), `CONFIG#START` / `<requestId>`.
#[derive(Clone, Debug)]
pub struct DynamoSetupStore {
    client: aws_sdk_dynamodb::Client,
    table: String,
    retention_days: u32,
}

impl DynamoSetupStore {
    pub fn new(client: aws_sdk_dynamodb::Client, table: String, retention_days: u32) -> Self {
        DynamoSetupStore { client, table, retention_days }
    }

    fn now_ms() -> i64 {
        SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_millis() as i64
    }
}

impl crate::ports::SetupStore for DynamoSetupStore {
    async fn load(&self, stack_id: &str) -> Result<Option<crate::setup::SetupRecord>, PortError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(format!("CONFIG#{stack_id}"), "STATE")))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| classify("GetItem", e))?;
        let Some(item) = out.item else { return Ok(None) };
        let json = item
            .get("record")
            .and_then(|v| v.as_s().ok())
            .ok_or_else(|| PortError::Permanent("setup record without body".into()))?;
        serde_json::from_str(json).map(Some).map_err(|e| PortError::Permanent(format!("setup record unreadable: {e}")))
    }

    async fn save(&self, stack_id: &str, record: &crate::setup::SetupRecord) -> Result<(), PortError> {
        let mut item = key(format!("CONFIG#{stack_id}"), "STATE");
        item.insert(
            "record".into(),
            s(serde_json::to_string(record).map_err(|e| PortError::Permanent(e.to_string()))?),
        );
        item.insert("appliedAt".into(), n(record.applied_at));
        put(&self.client, &self.table, item).await
    }

    async fn forget(&self, stack_id: &str) -> Result<(), PortError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(format!("CONFIG#{stack_id}"), "STATE")))
            .send()
            .await
            .map_err(|e| classify("DeleteItem", e))?;
        Ok(())
    }

    async fn claim_start(&self, request_id: &str) -> Result<bool, PortError> {
        let mut item = key("CONFIG#START".into(), request_id);
        let now = Self::now_ms();
        item.insert("claimedAt".into(), n(now));
        item.insert("expiresAt".into(), expires_in(30));
        let r = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        match r {
            Ok(_) => Ok(true),
            Err(e) if is_condition_failed(&e) => Ok(false),
            Err(e) => Err(classify("PutItem", e)),
        }
    }

    async fn put_drift(&self, stack_id: &str, found: &[String], repaired: bool) -> Result<(), PortError> {
        let now = Self::now_ms();
        let mut item = key(format!("CONFIG#{stack_id}"), &format!("DRIFT#{now:013}"));
        item.insert("differences".into(), AttributeValue::L(found.iter().map(|f| s(f.clone())).collect()));
        item.insert("repaired".into(), AttributeValue::Bool(repaired));
        item.insert("detectedAt".into(), n(now));
        item.insert("expiresAt".into(), expires_in(self.retention_days));
        put(&self.client, &self.table, item).await
    }
}
