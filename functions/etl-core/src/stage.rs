//! What every stage shares: decoding the event into its typed form, and the JSON boundary.

use std::future::Future;

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use crate::error::StageError;

/// Decodes a stage's event. A malformed event is `InvalidInput`, never a panic.
pub fn decode_event<E: DeserializeOwned>(payload: Value) -> Result<E, StageError> {
    serde_json::from_value(payload)
        .map_err(|e| StageError::invalid_input(format!("malformed event: {e}")))
}

/// Runs a typed stage function on a JSON payload and returns its JSON output: the shape both
/// the Lambda runtime and the local state-machine runner deal in.
pub async fn invoke_json<E, O, F, Fut>(payload: Value, stage: F) -> Result<Value, StageError>
where
    E: DeserializeOwned,
    O: Serialize,
    F: FnOnce(E) -> Fut,
    Fut: Future<Output = Result<O, StageError>>,
{
    let event = decode_event(payload)?;
    let output = stage(event).await?;
    serde_json::to_value(output)
        .map_err(|e| StageError::Internal(format!("stage output is not JSON: {e}")))
}

/// The logical date of an event, when it has one, for log lines.
pub fn logical_date_of(payload: &Value) -> Option<&str> {
    payload.get("logical_date").and_then(Value::as_str)
}
