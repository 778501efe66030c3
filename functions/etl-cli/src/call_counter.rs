//! Counts the AWS calls in-process functions make, for `etl run`'s cost and artifacts: an
//! auditor (see `etl_core::aws_calls`) that sees every S3 call a function makes and passes
//! the decision on to the contract's auditor when there is one.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, PoisonError};

use etl_core::aws_calls::{ApiCall, CallAuditor};

/// Operations that leave an object behind: its key is one of the run's artifacts.
const WRITES: &[&str] = &["PutObject", "CopyObject", "CompleteMultipartUpload"];

/// The calls counted so far: S3 operation → calls, and the keys written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallCounts {
    pub s3_operations: BTreeMap<String, u64>,
    /// `bucket/key` of every object written, each once.
    pub written: BTreeSet<String>,
}

impl CallCounts {
    /// What was counted after `earlier` was taken.
    pub fn since(&self, earlier: &CallCounts) -> CallCounts {
        let s3_operations = self
            .s3_operations
            .iter()
            .filter_map(|(op, n)| {
                let before = earlier.s3_operations.get(op).copied().unwrap_or(0);
                (*n > before).then(|| (op.clone(), n - before))
            })
            .collect();
        CallCounts {
            s3_operations,
            written: self.written.difference(&earlier.written).cloned().collect(),
        }
    }
}

/// Counts every call, then lets `inner` (the IAM contract's auditor, if any) decide it.
#[derive(Default)]
pub struct CallCounter {
    inner: Option<Arc<dyn CallAuditor>>,
    counts: Mutex<CallCounts>,
}

impl CallCounter {
    pub fn new(inner: Option<Arc<dyn CallAuditor>>) -> Self {
        CallCounter {
            inner,
            counts: Mutex::default(),
        }
    }

    pub fn snapshot(&self) -> CallCounts {
        self.counts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl CallAuditor for CallCounter {
    fn check(&self, call: &ApiCall) -> Result<(), String> {
        if call.service.eq_ignore_ascii_case("s3") {
            let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
            *counts
                .s3_operations
                .entry(call.operation.clone())
                .or_default() += 1;
            if WRITES.contains(&call.operation.as_str()) {
                if let (Some(bucket), Some(key)) = (&call.bucket, &call.key) {
                    counts.written.insert(format!("{bucket}/{key}"));
                }
            }
        }
        match &self.inner {
            Some(inner) => inner.check(call),
            None => Ok(()),
        }
    }

    fn permits(&self, call: &ApiCall) -> Option<bool> {
        self.inner.as_ref().and_then(|inner| inner.permits(call))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct DenyGets;

    impl CallAuditor for DenyGets {
        fn check(&self, call: &ApiCall) -> Result<(), String> {
            if call.operation == "GetObject" {
                Err("denied".into())
            } else {
                Ok(())
            }
        }
    }

    fn s3(operation: &str, key: &str) -> ApiCall {
        let mut call = ApiCall::new("hr-export", "s3", operation);
        call.bucket = Some("lake".into());
        call.key = Some(key.into());
        call
    }

    #[test]
    fn counts_s3_calls_and_written_keys_and_keeps_the_inner_decision() {
        let counter = CallCounter::new(Some(Arc::new(DenyGets)));
        assert_eq!(counter.check(&s3("PutObject", "a.csv")), Ok(()));
        let before = counter.snapshot();
        assert_eq!(counter.check(&s3("PutObject", "b.csv")), Ok(()));
        assert_eq!(
            counter.check(&s3("GetObject", "a.csv")),
            Err("denied".into())
        );
        assert_eq!(
            counter.check(&ApiCall::new("hr-sync", "secretsmanager", "GetSecretValue")),
            Ok(())
        );
        let during = counter.snapshot().since(&before);
        assert_eq!(
            during.s3_operations,
            BTreeMap::from([("GetObject".into(), 1), ("PutObject".into(), 1)])
        );
        assert_eq!(during.written, BTreeSet::from(["lake/b.csv".to_string()]));
    }
}
