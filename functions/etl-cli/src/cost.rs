//! What a pipeline run would cost on AWS (issue #18): the Lambda GB-seconds and requests, Step
//! Functions state transitions and S3 requests a local run measured, priced with AWS's public
//! on-demand prices. Free tiers, data transfer, storage, CloudWatch and Secrets Manager are
//! not counted: this is the marginal cost of one run.

use std::fmt;

/// Where the prices below come from, printed with every cost.
pub const PRICE_SOURCE: &str =
    "AWS public prices, us-east-1, as of 2026-12-06 (Lambda arm64, Step Functions Standard, S3 Standard; free tiers ignored)";

/// Lambda, arm64 (template.yaml's `Globals.Function.Architectures`), per GB-second of billed
/// duration; x86_64 would be $0.0000166667.
pub const LAMBDA_PER_GB_SECOND: f64 = 0.000_013_333_4;
/// Lambda, per request (invoke): $0.20 per million.
pub const LAMBDA_PER_REQUEST: f64 = 0.20 / 1_000_000.0;
/// Step Functions Standard, per state transition: $0.025 per thousand.
pub const SFN_PER_TRANSITION: f64 = 0.025 / 1_000.0;
/// S3 Standard PUT, COPY, POST and LIST requests: $0.005 per thousand.
pub const S3_PER_WRITE_OR_LIST: f64 = 0.005 / 1_000.0;
/// S3 Standard GET, SELECT and all other requests (DELETE is free): $0.0004 per thousand.
pub const S3_PER_READ: f64 = 0.0004 / 1_000.0;

/// Lambda's "GB" in GB-seconds is 1,024 MB of configured memory.
const MB_PER_GB: f64 = 1024.0;

/// How S3 bills a request, by its API operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum S3RequestClass {
    /// PUT, COPY, POST, LIST.
    WriteOrList,
    /// GET, HEAD and all other requests.
    Read,
    /// DELETE and abort requests.
    Free,
}

impl S3RequestClass {
    pub fn of(operation: &str) -> Self {
        match operation {
            "DeleteObject" | "DeleteObjects" | "AbortMultipartUpload" => S3RequestClass::Free,
            op if op.starts_with("Put")
                || op.starts_with("List")
                || op.starts_with("Copy")
                || matches!(
                    op,
                    "CreateMultipartUpload"
                        | "UploadPart"
                        | "UploadPartCopy"
                        | "CompleteMultipartUpload"
                        | "CreateBucket"
                        | "PostObject"
                ) =>
            {
                S3RequestClass::WriteOrList
            }
            _ => S3RequestClass::Read,
        }
    }
}

/// One Lambda invocation's bill: its configured memory and its duration.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Invocation {
    pub memory_mb: u64,
    /// Measured; Lambda rounds it up to the millisecond.
    pub duration_seconds: f64,
}

impl Invocation {
    pub fn billed_milliseconds(&self) -> u64 {
        (self.duration_seconds.max(0.0) * 1000.0).ceil() as u64
    }

    pub fn gb_seconds(&self) -> f64 {
        self.billed_milliseconds() as f64 / 1000.0 * self.memory_mb as f64 / MB_PER_GB
    }
}

/// What one run used of each billed dimension.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Usage {
    pub lambda_gb_seconds: f64,
    pub lambda_requests: u64,
    pub state_transitions: u64,
    pub s3_write_or_list: u64,
    pub s3_read: u64,
    /// Whether the S3 requests were counted (they are only for in-process functions).
    pub s3_counted: bool,
}

impl Usage {
    pub fn add_invocation(&mut self, invocation: Invocation) {
        self.lambda_gb_seconds += invocation.gb_seconds();
        self.lambda_requests += 1;
    }

    pub fn add_s3(&mut self, operation: &str, count: u64) {
        match S3RequestClass::of(operation) {
            S3RequestClass::WriteOrList => self.s3_write_or_list += count,
            S3RequestClass::Read => self.s3_read += count,
            S3RequestClass::Free => {}
        }
    }

    pub fn cost(&self) -> Cost {
        Cost {
            lambda_duration: self.lambda_gb_seconds * LAMBDA_PER_GB_SECOND,
            lambda_requests: self.lambda_requests as f64 * LAMBDA_PER_REQUEST,
            state_transitions: self.state_transitions as f64 * SFN_PER_TRANSITION,
            s3_requests: self.s3_write_or_list as f64 * S3_PER_WRITE_OR_LIST
                + self.s3_read as f64 * S3_PER_READ,
        }
    }
}

/// Dollars, by service line.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Cost {
    pub lambda_duration: f64,
    pub lambda_requests: f64,
    pub state_transitions: f64,
    pub s3_requests: f64,
}

impl Cost {
    pub fn total(&self) -> f64 {
        self.lambda_duration + self.lambda_requests + self.state_transitions + self.s3_requests
    }
}

/// One line: `lambda 12.345 GB-s, 9 requests · 41 transitions · S3 12 PUT/LIST + 30 GET = $0.001234`.
impl fmt::Display for Usage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s3 = if self.s3_counted {
            format!(
                "S3 {} PUT/COPY/POST/LIST + {} GET/other",
                self.s3_write_or_list, self.s3_read
            )
        } else {
            "S3 not counted (functions ran out of process)".to_string()
        };
        write!(
            f,
            "Lambda {:.3} GB-s, {} requests; {} state transitions; {s3}; ${:.6}",
            self.lambda_gb_seconds,
            self.lambda_requests,
            self.state_transitions,
            self.cost().total()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lambda_bills_whole_milliseconds_of_configured_memory() {
        let invocation = Invocation {
            memory_mb: 512,
            duration_seconds: 1.2341,
        };
        assert_eq!(invocation.billed_milliseconds(), 1235);
        // 1.235 s × 0.5 GB
        assert!((invocation.gb_seconds() - 0.6175).abs() < 1e-12);
    }

    #[test]
    fn a_hand_computed_run_costs_what_the_price_list_says() {
        let mut usage = Usage {
            state_transitions: 40,
            s3_counted: true,
            ..Usage::default()
        };
        // 2 s at 1,024 MB and 0.5 s at 256 MB: 2 + 0.125 = 2.125 GB-s.
        usage.add_invocation(Invocation {
            memory_mb: 1024,
            duration_seconds: 2.0,
        });
        usage.add_invocation(Invocation {
            memory_mb: 256,
            duration_seconds: 0.5,
        });
        usage.add_s3("PutObject", 10);
        usage.add_s3("ListObjectsV2", 2);
        usage.add_s3("GetObject", 100);
        usage.add_s3("DeleteObject", 7);
        assert_eq!((usage.s3_write_or_list, usage.s3_read), (12, 100));
        let cost = usage.cost();
        // 2.125 × 0.0000133334 = 0.000028333475
        assert!((cost.lambda_duration - 0.000_028_333_475).abs() < 1e-15);
        // 2 × 0.0000002
        assert!((cost.lambda_requests - 0.000_000_4).abs() < 1e-15);
        // 40 × 0.000025 = 0.001
        assert!((cost.state_transitions - 0.001).abs() < 1e-15);
        // 12 × 0.000005 + 100 × 0.0000004 = 0.00006 + 0.00004
        assert!((cost.s3_requests - 0.000_1).abs() < 1e-15);
        assert!((cost.total() - 0.001_128_733_475).abs() < 1e-12);
        assert_eq!(
            usage.to_string(),
            "Lambda 2.125 GB-s, 2 requests; 40 state transitions; \
             S3 12 PUT/COPY/POST/LIST + 100 GET/other; $0.001129"
        );
    }

    #[test]
    fn s3_operations_fall_in_their_price_class() {
        for write in ["PutObject", "CopyObject", "ListObjectsV2", "UploadPart"] {
            assert_eq!(
                S3RequestClass::of(write),
                S3RequestClass::WriteOrList,
                "{write}"
            );
        }
        for read in ["GetObject", "HeadObject", "GetBucketLocation"] {
            assert_eq!(S3RequestClass::of(read), S3RequestClass::Read, "{read}");
        }
        assert_eq!(S3RequestClass::of("DeleteObjects"), S3RequestClass::Free);
    }
}
