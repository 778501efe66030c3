//! AWS API operations → the IAM requests AWS authorises for them (the "Actions defined by"
//! tables of the Service Authorization Reference), for the operations this project calls.
//! An operation not listed is an error, so a new call is never silently allowed.

use serde::{Deserialize, Serialize};

use crate::{OperationError, Request};

/// An SDK call as an interceptor sees it: the service, the operation name and the input
/// fields that decide its resource and condition keys.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ApiCall {
    /// The function's binary name.
    pub function: String,
    /// `s3`, `secretsmanager` (the SDK's `S3` / `Secrets Manager` are accepted too).
    pub service: String,
    /// The API operation (`ListObjectsV2`, `GetSecretValue`).
    pub operation: String,
    pub bucket: Option<String>,
    pub key: Option<String>,
    /// DeleteObjects: the keys deleted.
    pub keys: Vec<String>,
    pub prefix: Option<String>,
    pub delimiter: Option<String>,
    pub max_keys: Option<i64>,
    /// CopyObject / UploadPartCopy: `bucket/key` (URL-encoded, optionally with a leading `/`
    /// and a `?versionId=`), as the S3 API takes it.
    pub copy_source: Option<String>,
    /// Secrets Manager SecretId: an ARN or a name.
    pub secret_id: Option<String>,
    /// Whether the call goes over TLS. The deployed SDK always does; a local endpoint is
    /// plain HTTP, so an interceptor should set this from the deployed behaviour, not the
    /// local URL, unless it means to test the bucket's TLS-only policy.
    pub insecure_transport: bool,
}

impl ApiCall {
    pub fn new(function: &str, service: &str, operation: &str) -> Self {
        ApiCall {
            function: function.into(),
            service: service.into(),
            operation: operation.into(),
            ..ApiCall::default()
        }
    }

    pub fn bucket(mut self, bucket: &str) -> Self {
        self.bucket = Some(bucket.into());
        self
    }

    pub fn key(mut self, key: &str) -> Self {
        self.key = Some(key.into());
        self
    }

    pub fn prefix(mut self, prefix: &str) -> Self {
        self.prefix = Some(prefix.into());
        self
    }

    pub fn secret_id(mut self, id: &str) -> Self {
        self.secret_id = Some(id.into());
        self
    }
}

/// Where ARNs are built (a Deployment's partition, region and account).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArnScope {
    pub partition: String,
    pub region: String,
    pub account_id: String,
}

/// The IAM requests AWS evaluates for `call`: usually one, one per key for DeleteObjects,
/// two for a copy (read the source, write the destination).
pub fn requests_for(call: &ApiCall, scope: &ArnScope) -> Result<Vec<Request>, OperationError> {
    let service: String = call
        .service
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .flat_map(char::to_lowercase)
        .collect();
    let mut requests = match service.as_str() {
        "s3" => s3(call, scope)?,
        "secretsmanager" => secrets_manager(call, scope)?,
        _ => return Err(unknown(call)),
    };
    let tls = if call.insecure_transport {
        "false"
    } else {
        "true"
    };
    for r in &mut requests {
        r.context
            .insert("aws:SecureTransport".into(), vec![tls.into()]);
    }
    Ok(requests)
}

fn unknown(call: &ApiCall) -> OperationError {
    OperationError::UnknownOperation {
        service: call.service.clone(),
        operation: call.operation.clone(),
    }
}

fn field<'c>(
    call: &ApiCall,
    value: &'c Option<String>,
    name: &'static str,
) -> Result<&'c str, OperationError> {
    value
        .as_deref()
        .ok_or_else(|| OperationError::MissingField {
            service: call.service.clone(),
            operation: call.operation.clone(),
            field: name,
        })
}

fn s3(call: &ApiCall, scope: &ArnScope) -> Result<Vec<Request>, OperationError> {
    let p = &scope.partition;
    let f = &call.function;
    let bucket = field(call, &call.bucket, "Bucket")?;
    let bucket_arn = format!("arn:{p}:s3:::{bucket}");
    let object = || -> Result<String, OperationError> {
        Ok(format!("{bucket_arn}/{}", field(call, &call.key, "Key")?))
    };
    let on_object = |action: &str| Ok(vec![Request::new(f, action, &object()?)]);
    match call.operation.as_str() {
        "GetObject" | "HeadObject" => on_object("s3:GetObject"),
        "PutObject" | "CreateMultipartUpload" | "UploadPart" | "CompleteMultipartUpload" => {
            on_object("s3:PutObject")
        }
        "AbortMultipartUpload" => on_object("s3:AbortMultipartUpload"),
        "DeleteObject" => on_object("s3:DeleteObject"),
        "ListParts" => on_object("s3:ListMultipartUploadParts"),
        "DeleteObjects" => Ok(call
            .keys
            .iter()
            .map(|k| Request::new(f, "s3:DeleteObject", &format!("{bucket_arn}/{k}")))
            .collect()),
        "CopyObject" | "UploadPartCopy" => {
            let source = copy_source(field(call, &call.copy_source, "CopySource")?)?;
            Ok(vec![
                Request::new(f, "s3:GetObject", &format!("arn:{p}:s3:::{source}")),
                Request::new(f, "s3:PutObject", &object()?),
            ])
        }
        "ListObjectsV2" | "ListObjects" => Ok(vec![list_bucket(call, &bucket_arn)]),
        // HeadBucket is authorised as s3:ListBucket.
        "HeadBucket" => Ok(vec![Request::new(f, "s3:ListBucket", &bucket_arn)]),
        "ListMultipartUploads" => Ok(vec![Request::new(
            f,
            "s3:ListBucketMultipartUploads",
            &bucket_arn,
        )]),
        "GetBucketLocation" => Ok(vec![Request::new(f, "s3:GetBucketLocation", &bucket_arn)]),
        _ => Err(unknown(call)),
    }
}

fn list_bucket(call: &ApiCall, bucket_arn: &str) -> Request {
    let mut r = Request::new(&call.function, "s3:ListBucket", bucket_arn);
    if let Some(prefix) = &call.prefix {
        r = r.with_context("s3:prefix", &[prefix]);
    }
    if let Some(delimiter) = &call.delimiter {
        r = r.with_context("s3:delimiter", &[delimiter]);
    }
    if let Some(max) = call.max_keys {
        r = r.with_context("s3:max-keys", &[&max.to_string()]);
    }
    r
}

/// `bucket/key` from a CopySource, decoded; `?versionId=` and a leading `/` dropped.
fn copy_source(raw: &str) -> Result<String, OperationError> {
    let path = raw.split('?').next().unwrap_or(raw).trim_start_matches('/');
    let decoded = percent_decode(path).ok_or_else(|| OperationError::BadCopySource(raw.into()))?;
    match decoded.split_once('/') {
        Some((b, k)) if !b.is_empty() && !k.is_empty() => Ok(decoded),
        _ => Err(OperationError::BadCopySource(raw.into())),
    }
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// A SecretId that is a name, not an ARN, stands for `secret:<name>-*`: Secrets Manager
/// appends a random six-character suffix to every secret's ARN, and IAM evaluates the full
/// ARN. The request is marked as a pattern, decided for the secret a policy names.
fn secrets_manager(call: &ApiCall, scope: &ArnScope) -> Result<Vec<Request>, OperationError> {
    let action = match call.operation.as_str() {
        "GetSecretValue" => "secretsmanager:GetSecretValue",
        "DescribeSecret" => "secretsmanager:DescribeSecret",
        _ => return Err(unknown(call)),
    };
    let id = field(call, &call.secret_id, "SecretId")?;
    let mut r = if id.starts_with("arn:") {
        Request::new(&call.function, action, id)
    } else {
        let ArnScope {
            partition,
            region,
            account_id,
        } = scope;
        let arn = format!("arn:{partition}:secretsmanager:{region}:{account_id}:secret:{id}-*");
        Request::new(&call.function, action, &arn)
    };
    r.resource_is_pattern = !id.starts_with("arn:");
    Ok(vec![r])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope() -> ArnScope {
        ArnScope {
            partition: "aws".into(),
            region: "eu-west-1".into(),
            account_id: "111122223333".into(),
        }
    }

    #[test]
    fn copy_reads_source_and_writes_destination() {
        let mut call = ApiCall::new("f", "S3", "CopyObject")
            .bucket("b")
            .key("to/x");
        call.copy_source = Some("/src/from%20here/x?versionId=1".into());
        let r = requests_for(&call, &scope()).unwrap();
        assert_eq!(r[0].action, "s3:GetObject");
        assert_eq!(r[0].resource, "arn:aws:s3:::src/from here/x");
        assert_eq!(r[1].action, "s3:PutObject");
        assert_eq!(r[1].resource, "arn:aws:s3:::b/to/x");
    }

    #[test]
    fn listing_carries_its_condition_keys() {
        let mut call = ApiCall::new("f", "s3", "ListObjectsV2")
            .bucket("b")
            .prefix("raw/");
        call.max_keys = Some(1000);
        let r = &requests_for(&call, &scope()).unwrap()[0];
        assert_eq!(
            (r.action.as_str(), r.resource.as_str()),
            ("s3:ListBucket", "arn:aws:s3:::b")
        );
        assert_eq!(r.context["s3:prefix"], ["raw/"]);
        assert_eq!(r.context["s3:max-keys"], ["1000"]);
        assert_eq!(r.context["aws:SecureTransport"], ["true"]);
    }

    #[test]
    fn delete_objects_is_one_request_per_key() {
        let mut call = ApiCall::new("f", "s3", "DeleteObjects").bucket("b");
        call.keys = vec!["a".into(), "b".into()];
        let r = requests_for(&call, &scope()).unwrap();
        assert_eq!(r.len(), 2);
        assert!(r.iter().all(|r| r.action == "s3:DeleteObject"));
    }

    #[test]
    fn secret_by_name_is_a_pattern() {
        let call = ApiCall::new("f", "Secrets Manager", "GetSecretValue").secret_id("etl/db");
        let r = &requests_for(&call, &scope()).unwrap()[0];
        assert_eq!(
            r.resource,
            "arn:aws:secretsmanager:eu-west-1:111122223333:secret:etl/db-*"
        );
        assert!(r.resource_is_pattern);
    }

    #[test]
    fn unknown_operations_and_missing_fields_are_errors() {
        let e = requests_for(
            &ApiCall::new("f", "s3", "PutBucketPolicy").bucket("b"),
            &scope(),
        );
        assert!(e.unwrap_err().to_string().contains("PutBucketPolicy"));
        let e = requests_for(&ApiCall::new("f", "sqs", "SendMessage"), &scope());
        assert!(matches!(e, Err(OperationError::UnknownOperation { .. })));
        let e = requests_for(&ApiCall::new("f", "s3", "GetObject").bucket("b"), &scope());
        assert!(matches!(
            e,
            Err(OperationError::MissingField { field: "Key", .. })
        ));
    }
}
