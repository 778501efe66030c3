//! Every AWS API call a function makes, as IAM would see it (issue #14).
//!
//! moto checks no IAM, so a call AWS would deny passes every local test. An SDK interceptor
//! on a function's S3 and Secrets Manager clients turns each call, before it is sent, into an
//! [`ApiCall`] (service, operation, bucket, key, prefix, secret id...) and hands it to a
//! [`CallAuditor`]: the tests' auditor decides it against template.yaml's IAM contract and
//! fails the request as AWS's AccessDenied would; the Lambda binaries' auditor only records
//! it (`ETL_AWS_CALL_LOG`) for `etl iam report` to decide afterwards.
//!
//! Only a function's own calls are audited: a [`crate::Context`] made for a function
//! ([`crate::Context::for_function`], a Lambda binary's) carries the interceptor, the
//! operator's (the CLI, the test harness creating buckets and reading results) does not.
//!
//! [`ApiCall`] is iam-contract's: that crate depends on serde, serde_json, serde_yaml and
//! thiserror only, all already in every binary's graph but serde_yaml, and this module uses
//! only the plain `ApiCall` struct, so the evaluator is dead code the linker drops from the
//! Lambda binaries.

use std::fmt;
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use aws_sdk_s3::config::interceptors::{
    BeforeDeserializationInterceptorContextMut, BeforeSerializationInterceptorContextRef,
};
use aws_sdk_s3::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::Input;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::config_bag::{Storable, StoreReplace};
use serde::{Deserialize, Serialize};

pub use iam_contract::ApiCall;

/// The environment variable naming the file every audited call is appended to (one JSON
/// [`CallRecord`] a line).
pub const CALL_LOG_VAR: &str = "ETL_AWS_CALL_LOG";

/// Decides (or only records) the AWS calls functions make.
pub trait CallAuditor: Send + Sync {
    /// Called before `call` is sent. `Err(reason)`: AWS would deny it; the reason names the
    /// function, the IAM action, the resource and why.
    fn check(&self, call: &ApiCall) -> Result<(), String>;

    /// Whether the function holds the permissions `call` needs, asked without recording a
    /// call (S3's 404-or-403 rule). `None`: this auditor does not know.
    fn permits(&self, _call: &ApiCall) -> Option<bool> {
        None
    }
}

/// Who a context's AWS calls are made as, and who audits them.
#[derive(Clone, Default)]
pub struct Audit {
    function: Option<Arc<str>>,
    auditor: Option<Arc<dyn CallAuditor>>,
}

impl fmt::Debug for Audit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Audit")
            .field("function", &self.function)
            .field("auditor", &self.auditor.is_some())
            .finish()
    }
}

impl Audit {
    /// No function yet (the operator's context), audited by `auditor` once it acts as one.
    pub fn new(auditor: Option<Arc<dyn CallAuditor>>) -> Self {
        Audit {
            function: None,
            auditor,
        }
    }

    /// The same auditor, calls made as `function`.
    pub fn for_function(&self, function: &str) -> Self {
        Audit {
            function: Some(function.into()),
            auditor: self.auditor.clone(),
        }
    }

    /// Another auditor, same function.
    pub fn with_auditor(&self, auditor: Option<Arc<dyn CallAuditor>>) -> Self {
        Audit {
            function: self.function.clone(),
            auditor,
        }
    }

    pub fn function(&self) -> Option<&str> {
        self.function.as_deref()
    }

    pub fn auditor(&self) -> Option<&Arc<dyn CallAuditor>> {
        self.auditor.as_ref()
    }

    /// Calls are audited: a function with an auditor.
    pub fn is_active(&self) -> bool {
        self.function.is_some() && self.auditor.is_some()
    }

    fn interceptor(&self) -> Option<CallInterceptor> {
        match (&self.function, &self.auditor) {
            (Some(function), Some(auditor)) => Some(CallInterceptor {
                function: Arc::clone(function),
                auditor: Arc::clone(auditor),
            }),
            _ => None,
        }
    }

    /// `builder` with the interceptor when calls are audited.
    pub fn s3_config(&self, builder: aws_sdk_s3::config::Builder) -> aws_sdk_s3::config::Builder {
        match self.interceptor() {
            Some(i) => builder.interceptor(i),
            None => builder,
        }
    }

    /// A Secrets Manager client, with the interceptor when calls are audited.
    pub fn secrets_client(&self, aws: &aws_config::SdkConfig) -> aws_sdk_secretsmanager::Client {
        let builder = aws_sdk_secretsmanager::config::Builder::from(aws);
        let builder = match self.interceptor() {
            Some(i) => builder.interceptor(i),
            None => builder,
        };
        aws_sdk_secretsmanager::Client::from_conf(builder.build())
    }
}

/// The interceptor of one function's clients.
#[derive(Clone)]
struct CallInterceptor {
    function: Arc<str>,
    auditor: Arc<dyn CallAuditor>,
}

impl fmt::Debug for CallInterceptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CallInterceptor({})", self.function)
    }
}

/// The call of the request in flight, kept for the response hook.
#[derive(Debug, Clone)]
struct AuditedCall(ApiCall);

impl Storable for AuditedCall {
    type Storer = StoreReplace<Self>;
}

/// A call the IAM contract denies: fails the request before it is sent. The SDK reports it
/// as a construction failure, which [`crate::retry`] never retries, as it never retries
/// AWS's AccessDenied.
#[derive(Debug, thiserror::Error)]
#[error("AccessDenied (IAM contract of template.yaml): {reason}")]
pub struct CallDenied {
    pub reason: String,
}

impl Intercept for CallInterceptor {
    fn name(&self) -> &'static str {
        "IamCallAudit"
    }

    /// Not `read_before_execution`: a client's interceptors run that hook before the
    /// operation's configuration (its name in [`Metadata`]) is in the bag.
    fn read_before_serialization(
        &self,
        context: &BeforeSerializationInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let (service, operation) = cfg
            .load::<Metadata>()
            .map(|m| (m.service().to_string(), m.name().to_string()))
            .ok_or("the SDK gave no operation metadata to audit")?;
        let call = describe(&self.function, &service, &operation, context.input());
        self.auditor
            .check(&call)
            .map_err(|reason| CallDenied { reason })?;
        cfg.interceptor_state().store_put(AuditedCall(call));
        Ok(())
    }

    /// S3 answers a missing object with 404 only to a caller that may list the bucket
    /// (s3:ListBucket, no prefix condition: S3 evaluates it without one); anyone else gets
    /// 403 AccessDenied. moto always says 404, so the answer is rewritten as AWS's would be.
    fn modify_before_deserialization(
        &self,
        context: &mut BeforeDeserializationInterceptorContextMut<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let response = context.response_mut();
        if response.status().as_u16() != 404 {
            return Ok(());
        }
        let Some(AuditedCall(call)) = cfg.load::<AuditedCall>() else {
            return Ok(());
        };
        if !matches!(call.operation.as_str(), "GetObject" | "HeadObject") {
            return Ok(());
        }
        let mut listing = ApiCall::new(&call.function, "s3", "ListObjectsV2");
        listing.bucket = call.bucket.clone();
        if self.auditor.permits(&listing) != Some(false) {
            return Ok(());
        }
        *response.status_mut() = StatusCode::try_from(403_u16)?;
        response.headers_mut().remove("content-length");
        // HEAD has no body; GET's is S3's error document.
        *response.body_mut() = if call.operation == "HeadObject" {
            SdkBody::empty()
        } else {
            SdkBody::from(ACCESS_DENIED_XML)
        };
        Ok(())
    }
}

const ACCESS_DENIED_XML: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>AccessDenied</Code><Message>Access Denied (a missing key, and no s3:ListBucket on the bucket: modelled by etl-core's aws_calls)</Message></Error>";

/// The IAM-relevant fields of an SDK operation's input. An operation not listed keeps only
/// its service and name, which iam-contract refuses as unmapped: never silently allowed.
pub fn describe(function: &str, service: &str, operation: &str, input: &Input) -> ApiCall {
    use aws_sdk_secretsmanager::operation as sm;
    let mut call = ApiCall::new(function, service, operation);
    if describe_s3_object(&mut call, input) || describe_s3_bucket(&mut call, input) {
        return call;
    }
    let secret = input
        .downcast_ref::<sm::get_secret_value::GetSecretValueInput>()
        .map(|i| i.secret_id())
        .or_else(|| {
            input
                .downcast_ref::<sm::describe_secret::DescribeSecretInput>()
                .map(|i| i.secret_id())
        });
    call.secret_id = secret.flatten().map(str::to_string);
    call
}

/// Operations on one object: bucket and key (and a copy's source).
fn describe_s3_object(call: &mut ApiCall, input: &Input) -> bool {
    use aws_sdk_s3::operation as op;
    macro_rules! object {
        ($($module:ident :: $input:ident),* $(,)?) => {
            $(if let Some(i) = input.downcast_ref::<op::$module::$input>() {
                call.bucket = i.bucket().map(str::to_string);
                call.key = i.key().map(str::to_string);
                return true;
            })*
        };
    }
    object!(
        get_object::GetObjectInput,
        head_object::HeadObjectInput,
        put_object::PutObjectInput,
        delete_object::DeleteObjectInput,
        create_multipart_upload::CreateMultipartUploadInput,
        upload_part::UploadPartInput,
        complete_multipart_upload::CompleteMultipartUploadInput,
        abort_multipart_upload::AbortMultipartUploadInput,
        list_parts::ListPartsInput,
    );
    if let Some(i) = input.downcast_ref::<op::copy_object::CopyObjectInput>() {
        call.bucket = i.bucket().map(str::to_string);
        call.key = i.key().map(str::to_string);
        call.copy_source = i.copy_source().map(str::to_string);
        return true;
    }
    if let Some(i) = input.downcast_ref::<op::upload_part_copy::UploadPartCopyInput>() {
        call.bucket = i.bucket().map(str::to_string);
        call.key = i.key().map(str::to_string);
        call.copy_source = i.copy_source().map(str::to_string);
        return true;
    }
    false
}

/// Operations on the bucket: listings with their condition keys, batch deletes.
fn describe_s3_bucket(call: &mut ApiCall, input: &Input) -> bool {
    use aws_sdk_s3::operation as op;
    let owned = |s: Option<&str>| s.map(str::to_string);
    if let Some(i) = input.downcast_ref::<op::list_objects_v2::ListObjectsV2Input>() {
        call.bucket = owned(i.bucket());
        call.prefix = owned(i.prefix());
        call.delimiter = owned(i.delimiter());
        call.max_keys = i.max_keys().map(i64::from);
    } else if let Some(i) = input.downcast_ref::<op::list_objects::ListObjectsInput>() {
        call.bucket = owned(i.bucket());
        call.prefix = owned(i.prefix());
        call.delimiter = owned(i.delimiter());
        call.max_keys = i.max_keys().map(i64::from);
    } else if let Some(i) = input.downcast_ref::<op::delete_objects::DeleteObjectsInput>() {
        call.bucket = owned(i.bucket());
        call.keys = i
            .delete()
            .map(|d| d.objects().iter().map(|o| o.key().to_string()).collect())
            .unwrap_or_default();
    } else if let Some(i) = input.downcast_ref::<op::head_bucket::HeadBucketInput>() {
        call.bucket = owned(i.bucket());
    } else if let Some(i) =
        input.downcast_ref::<op::list_multipart_uploads::ListMultipartUploadsInput>()
    {
        call.bucket = owned(i.bucket());
    } else if let Some(i) = input.downcast_ref::<op::get_bucket_location::GetBucketLocationInput>()
    {
        call.bucket = owned(i.bucket());
    } else {
        return false;
    }
    true
}

/// Where a call was checked: the deployment's data bucket and secrets, so `etl iam report`
/// can decide the call again for a canonical deployment.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct CallDeployment {
    pub bucket: String,
    pub database_secret_arn: Option<String>,
    pub elasticsearch_secret_arn: Option<String>,
}

impl CallDeployment {
    /// The bucket and secret ARNs a configuration uses.
    pub fn of(config: &crate::Config) -> Self {
        let secret = |source: &crate::config::Source| match source {
            crate::config::Source::Secret { arn } => Some(arn.clone()),
            _ => None,
        };
        CallDeployment {
            bucket: config.bucket.clone(),
            database_secret_arn: secret(&config.postgres.source),
            elasticsearch_secret_arn: secret(&config.elasticsearch.source),
        }
    }
}

/// One line of the call log.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct CallRecord {
    pub call: ApiCall,
    pub deployment: CallDeployment,
    /// `allowed`, `denied`, or `unchecked` (recorded only, by a Lambda binary).
    pub decision: String,
    /// The IAM requests and their decisions, when checked.
    pub evaluations: Vec<serde_json::Value>,
    pub reason: Option<String>,
}

/// Appends [`CallRecord`]s to a file, one JSON line each, from any number of processes:
/// each line is one `write` to a file opened for appending, so lines never interleave.
pub struct CallLog {
    file: Mutex<std::fs::File>,
}

impl CallLog {
    pub fn open(path: &std::path::Path) -> std::io::Result<Self> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        Ok(CallLog {
            file: Mutex::new(file),
        })
    }

    /// The log `ETL_AWS_CALL_LOG` names, when it is set and can be opened.
    pub fn from_env() -> Option<Self> {
        let path = PathBuf::from(std::env::var_os(CALL_LOG_VAR)?);
        match CallLog::open(&path) {
            Ok(log) => Some(log),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "cannot open the AWS call log");
                None
            }
        }
    }

    /// Best effort: a call log that cannot be written loses the line, never the call.
    pub fn append(&self, record: &CallRecord) {
        let Ok(mut line) = serde_json::to_vec(record) else {
            return;
        };
        line.push(b'\n');
        if let Ok(mut file) = self.file.lock() {
            if let Err(e) = file.write_all(&line) {
                tracing::warn!(error = %e, "cannot append to the AWS call log");
            }
        }
    }
}

/// The Lambda binaries' auditor: records every call as `unchecked` for `etl iam report`,
/// allows all (the evaluator stays out of the binaries).
pub struct RecordingAuditor {
    log: CallLog,
    deployment: CallDeployment,
}

impl RecordingAuditor {
    /// When `ETL_AWS_CALL_LOG` is set.
    pub fn from_env(config: &crate::Config) -> Option<Arc<dyn CallAuditor>> {
        let log = CallLog::from_env()?;
        Some(Arc::new(RecordingAuditor {
            log,
            deployment: CallDeployment::of(config),
        }))
    }
}

impl CallAuditor for RecordingAuditor {
    fn check(&self, call: &ApiCall) -> Result<(), String> {
        self.log.append(&CallRecord {
            call: call.clone(),
            deployment: self.deployment.clone(),
            decision: "unchecked".into(),
            ..CallRecord::default()
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
    use aws_sdk_s3::primitives::ByteStream;
    use aws_sdk_s3::types::{CompletedMultipartUpload, Delete, ObjectIdentifier};

    use super::*;
    use crate::{ErrorKind, Service, StageError};

    /// Records every call and denies it, so nothing is ever sent.
    #[derive(Default)]
    struct DenyAll(Mutex<Vec<ApiCall>>);

    impl CallAuditor for DenyAll {
        fn check(&self, call: &ApiCall) -> Result<(), String> {
            if let Ok(mut calls) = self.0.lock() {
                calls.push(call.clone());
            }
            Err(format!("{} may not {}", call.function, call.operation))
        }
    }

    impl DenyAll {
        fn last(&self) -> ApiCall {
            self.0.lock().unwrap().last().cloned().unwrap()
        }
    }

    fn clients(auditor: &Arc<DenyAll>) -> (aws_sdk_s3::Client, aws_sdk_secretsmanager::Client) {
        let audit = Audit::new(Some(Arc::clone(auditor) as Arc<dyn CallAuditor>))
            .for_function("marketing-unify");
        let aws = aws_config::SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            // Nothing listens there: a request that got past the auditor would fail otherwise.
            .endpoint_url("http://127.0.0.1:9")
            .credentials_provider(aws_sdk_s3::config::SharedCredentialsProvider::new(
                Credentials::new("k", "s", None, None, "test"),
            ))
            .build();
        let s3 = audit.s3_config(aws_sdk_s3::config::Builder::from(&aws).force_path_style(true));
        (
            aws_sdk_s3::Client::from_conf(s3.build()),
            audit.secrets_client(&aws),
        )
    }

    fn expected(operation: &str) -> ApiCall {
        ApiCall::new("marketing-unify", "S3", operation).bucket("b")
    }

    #[tokio::test]
    async fn a_denied_call_fails_before_sending_naming_the_reason_and_is_not_retryable() {
        let auditor = Arc::new(DenyAll::default());
        let (s3, _) = clients(&auditor);
        let err = s3.head_bucket().bucket("b").send().await.unwrap_err();
        let err = StageError::aws(Service::S3, err);
        assert_eq!(err.kind(), ErrorKind::Fatal);
        let text = err.to_string();
        assert!(
            text.contains("AccessDenied") && text.contains("marketing-unify may not HeadBucket"),
            "{text}"
        );
        assert_eq!(auditor.last(), expected("HeadBucket"));
    }

    #[tokio::test]
    async fn object_operations_carry_bucket_and_key() {
        let auditor = Arc::new(DenyAll::default());
        let (s3, _) = clients(&auditor);
        let check = |operation: &str| {
            assert_eq!(auditor.last(), expected(operation).key("k"), "{operation}");
        };
        let _ = s3.get_object().bucket("b").key("k").send().await;
        check("GetObject");
        let _ = s3.head_object().bucket("b").key("k").send().await;
        check("HeadObject");
        let body = ByteStream::from_static(b"x");
        let _ = s3.put_object().bucket("b").key("k").body(body).send().await;
        check("PutObject");
        let _ = s3
            .create_multipart_upload()
            .bucket("b")
            .key("k")
            .send()
            .await;
        check("CreateMultipartUpload");
        let up = s3
            .upload_part()
            .bucket("b")
            .key("k")
            .upload_id("u")
            .part_number(1);
        let _ = up.body(ByteStream::from_static(b"x")).send().await;
        check("UploadPart");
        let done = CompletedMultipartUpload::builder().build();
        let complete = s3.complete_multipart_upload().bucket("b").key("k");
        let _ = complete.upload_id("u").multipart_upload(done).send().await;
        check("CompleteMultipartUpload");
        let abort = s3.abort_multipart_upload().bucket("b").key("k");
        let _ = abort.upload_id("u").send().await;
        check("AbortMultipartUpload");
        let _ = s3.delete_object().bucket("b").key("k").send().await;
        check("DeleteObject");
        let copy = s3
            .copy_object()
            .bucket("b")
            .key("k")
            .copy_source("src/a%20b");
        let _ = copy.send().await;
        let mut copied = expected("CopyObject").key("k");
        copied.copy_source = Some("src/a%20b".into());
        assert_eq!(auditor.last(), copied);
    }

    #[tokio::test]
    async fn listings_and_batch_deletes_carry_their_condition_keys_and_keys() {
        let auditor = Arc::new(DenyAll::default());
        let (s3, _) = clients(&auditor);
        let list = s3
            .list_objects_v2()
            .bucket("b")
            .prefix("raw/")
            .delimiter("/");
        let _ = list.max_keys(7).send().await;
        let mut listed = expected("ListObjectsV2").prefix("raw/");
        listed.delimiter = Some("/".into());
        listed.max_keys = Some(7);
        assert_eq!(auditor.last(), listed);

        let objects = ["a", "b/c"].map(|k| ObjectIdentifier::builder().key(k).build().unwrap());
        let delete = Delete::builder()
            .set_objects(Some(objects.to_vec()))
            .build()
            .unwrap();
        let _ = s3.delete_objects().bucket("b").delete(delete).send().await;
        let mut deleted = expected("DeleteObjects");
        deleted.keys = vec!["a".into(), "b/c".into()];
        assert_eq!(auditor.last(), deleted);
    }

    #[tokio::test]
    async fn a_secret_fetch_carries_its_id() {
        let auditor = Arc::new(DenyAll::default());
        let (_, secrets) = clients(&auditor);
        let arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:etl/db-AbCdEf";
        let _ = secrets.get_secret_value().secret_id(arn).send().await;
        assert_eq!(
            auditor.last(),
            ApiCall::new("marketing-unify", "Secrets Manager", "GetSecretValue").secret_id(arn)
        );
    }

    #[tokio::test]
    async fn the_operators_clients_are_not_audited() {
        let auditor: Arc<dyn CallAuditor> = Arc::new(DenyAll::default());
        assert!(!Audit::new(Some(Arc::clone(&auditor))).is_active());
        assert!(!Audit::default().for_function("f").is_active());
        assert!(Audit::new(Some(auditor)).for_function("f").is_active());
    }
}
