//! A distributed Map's `ItemBatcher`: groups items into `{"Items": [...], "BatchInput": …}`
//! child inputs.
//!
//! Source: "ItemBatcher (Map)",
//! <https://docs.aws.amazon.com/step-functions/latest/dg/input-output-itembatcher.html>.
//! A batch holds at most `MaxItemsPerBatch` items and at most `MaxInputBytesPerBatch` bytes.
//! The docs do not say which bytes count; here it is the whole child input (the `Items`
//! wrapper and `BatchInput` included), which is what the child's 256 KiB input quota counts.

use serde_json::{json, Value};

use crate::limits::json_size;
use crate::Failure;

/// One child's input and how many items it holds.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    pub input: Value,
    pub items: usize,
}

/// The batches of `items`, in order. `max_items` and `max_bytes` are the resolved limits
/// (at least one is set); `batch_input` is the expanded `BatchInput`.
pub fn batches(
    items: Vec<Value>,
    max_items: Option<u64>,
    max_bytes: Option<u64>,
    batch_input: Option<&Value>,
) -> Result<Vec<Batch>, Failure> {
    let wrap = |items: Vec<Value>| {
        let count = items.len();
        let mut input = json!({ "Items": items });
        if let Some(extra) = batch_input {
            input["BatchInput"] = extra.clone();
        }
        Batch {
            input,
            items: count,
        }
    };
    let empty_size = json_size(&wrap(Vec::new()).input) as u64;
    let mut out = Vec::new();
    let mut current: Vec<Value> = Vec::new();
    let mut size = empty_size;
    for (index, item) in items.into_iter().enumerate() {
        let item_size = json_size(&item) as u64;
        let grown =
            |current: &Vec<Value>, size: u64| size + item_size + u64::from(!current.is_empty());
        let full_by_count = max_items.is_some_and(|max| current.len() as u64 >= max);
        let full_by_bytes = max_bytes.is_some_and(|max| grown(&current, size) > max);
        if !current.is_empty() && (full_by_count || full_by_bytes) {
            out.push(wrap(std::mem::take(&mut current)));
            size = empty_size;
        }
        if let Some(max) = max_bytes.filter(|&max| grown(&current, size) > max) {
            return Err(Failure::runtime(format!(
                "The item at index {index} ({item_size} bytes) does not fit in a batch of \
                 MaxInputBytesPerBatch {max} bytes"
            )));
        }
        size = grown(&current, size);
        current.push(item);
    }
    if !current.is_empty() {
        out.push(wrap(current));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs(batches: &[Batch]) -> Vec<Value> {
        batches.iter().map(|b| b.input.clone()).collect()
    }

    #[test]
    fn by_count_with_batch_input() {
        let items = (1..=5).map(|n| json!(n)).collect();
        let out = batches(items, Some(2), None, Some(&json!({"run": 7}))).unwrap();
        assert_eq!(
            inputs(&out),
            vec![
                json!({"Items": [1, 2], "BatchInput": {"run": 7}}),
                json!({"Items": [3, 4], "BatchInput": {"run": 7}}),
                json!({"Items": [5], "BatchInput": {"run": 7}}),
            ]
        );
        assert_eq!(out.iter().map(|b| b.items).collect::<Vec<_>>(), [2, 2, 1]);
    }

    #[test]
    fn by_bytes_counts_the_whole_child_input() {
        // {"Items":[]} is 12 bytes; each "aaaa" adds 6, and a comma after the first.
        let items: Vec<Value> = (0..4).map(|_| json!("aaaa")).collect();
        let out = batches(items.clone(), None, Some(25), None).unwrap();
        assert_eq!(
            inputs(&out),
            vec![
                json!({"Items": ["aaaa", "aaaa"]}),
                json!({"Items": ["aaaa", "aaaa"]})
            ]
        );
        assert!(out.iter().all(|b| json_size(&b.input) <= 25));
        let out = batches(items.clone(), Some(3), Some(1000), None).unwrap();
        assert_eq!(out.len(), 2, "the count limit still applies");
        let failure = batches(items, None, Some(15), None).unwrap_err();
        assert_eq!(failure.error, crate::errors::RUNTIME);
        assert!(failure.cause.contains("index 0"), "{}", failure.cause);
    }
}
