//! The functions Step Functions adds to JSONata, and the one it takes away.
//!
//! Source: "JSONata functions provided by Step Functions",
//! <https://docs.aws.amazon.com/step-functions/latest/dg/transforming-data.html#jsonata-functions-provided-by-sfn>:
//! `$partition`, `$range`, `$hash`, `$random` (with an optional seed), `$uuid`, `$parse`; `$eval`
//! is not available. Integer arguments lose their fraction ("automatically round down"; the
//! service truncates towards zero, so `-1.7` is `-1`). Where the page is silent — which
//! arguments make a function undefined rather than fail, the messages, the `$range` length limit,
//! the seeded generator — the behaviour is the one measured against the service and recorded by
//! the Floci emulator (`docs/services/step-functions.md`, `JsonataEvaluator.java`).

use std::sync::LazyLock;

use jlens_core::{Bindings, Error, HostFunction};
use rand::RngExt;
use serde_json::{json, Value};
use sha2::Digest;

use super::errors::UNCODED;
use super::values::normalize_numbers;

type Outcome = Result<Option<Value>, Error>;

/// The longest `$range` the service builds; one element more is refused as over its memory
/// limit.
pub(super) const RANGE_LIMIT: i128 = 360_145;

/// The functions, bound once and shared by every evaluation.
pub(super) static BINDINGS: LazyLock<Bindings> = LazyLock::new(|| {
    Bindings::new()
        .function("partition", host(2, partition))
        .function("range", host(3, range))
        .function("hash", host(2, hash))
        // Overrides JSONata's own `$random()`, which takes no seed.
        .function("random", host(1, random))
        .function("uuid", host(0, uuid))
        .function("parse", host(1, parse))
        .function("eval", host(2, |_| Err(Error::new("T1006"))))
});

/// The arity is what `$map` and partial application see; the functions check their arguments
/// themselves so that they fail with the service's messages.
fn host(arity: usize, function: fn(&[Option<Value>]) -> Outcome) -> HostFunction {
    HostFunction::new(arity, move |args, _call| function(args)).without_input()
}

fn arg(args: &[Option<Value>], index: usize) -> Option<&Value> {
    args.get(index).and_then(Option::as_ref)
}

/// `position` counts from 1, as JSONata's messages do.
fn signature_error(function: &str, position: usize) -> Error {
    Error::new("T0410")
        .with("index", position)
        .with("token", function)
}

fn message_error(message: impl Into<String>) -> Error {
    Error::new("D3137").with("message", message.into())
}

fn memory_limit() -> Error {
    Error::new(UNCODED).with(
        "message",
        "Expression evaluation memory limit exceeded: Check for excessive memory usage",
    )
}

/// One argument more than the function takes is refused, naming it.
fn reject_surplus(args: &[Option<Value>], function: &str, takes: usize) -> Result<(), Error> {
    match arg(args, takes) {
        Some(_) => Err(signature_error(function, takes + 1)),
        None => Ok(()),
    }
}

#[allow(clippy::cast_possible_truncation)]
fn towards_zero(value: &Value, function: &str, position: usize) -> Result<i64, Error> {
    // `as` saturates: a seed or bound beyond i64 is clamped, not wrapped.
    value
        .as_f64()
        .map(|number| number.trunc() as i64)
        .ok_or_else(|| signature_error(function, position))
}

/// `$partition(array, chunkSize)`: the array in chunks of `chunkSize`, the last one shorter.
fn partition(args: &[Option<Value>]) -> Outcome {
    reject_surplus(args, "partition", 2)?;
    let Some(array) = arg(args, 0) else {
        return Ok(None);
    };
    let Value::Array(items) = array else {
        return Err(Error::new("T0412")
            .with("index", 1)
            .with("token", "partition"));
    };
    if items.is_empty() {
        return Ok(None);
    }
    let Some(size) = arg(args, 1) else {
        return Ok(Some(json!([items])));
    };
    let size = towards_zero(size, "partition", 2)?;
    if size < 0 {
        return Err(message_error("Second argument must be zero or greater"));
    }
    let Ok(size @ 1..) = usize::try_from(size) else {
        return Ok(None);
    };
    let chunks = items.chunks(size).map(|chunk| Value::Array(chunk.to_vec()));
    Ok(Some(Value::Array(chunks.collect())))
}

/// `$range(start, end, step)`: from `start` towards `end` by `step`, `end` included when a step
/// lands on it. A range of one value is that value, as a JSONata sequence of one is.
fn range(args: &[Option<Value>]) -> Outcome {
    reject_surplus(args, "range", 3)?;
    let start = towards_zero(arg(args, 0).unwrap_or(&Value::Null), "range", 1)?;
    let end = towards_zero(arg(args, 1).unwrap_or(&Value::Null), "range", 2)?;
    let Some(step) = arg(args, 2) else {
        return Ok(None);
    };
    let step = towards_zero(step, "range", 3)?;
    if step == 0 || (step > 0 && start > end) || (step < 0 && start < end) {
        return Ok(None);
    }
    if start == end {
        return Ok(Some(json!(start)));
    }
    let (start, end, step) = (i128::from(start), i128::from(end), i128::from(step));
    let count = (end - start) / step + 1;
    if count > RANGE_LIMIT {
        return Err(memory_limit());
    }
    // Every element lies between start and end, so it fits an i64.
    let values: Result<Vec<Value>, _> = (0..count)
        .map(|i| i64::try_from(start + i * step).map(Value::from))
        .collect();
    values
        .map(|values| Some(Value::Array(values)))
        .map_err(|_| memory_limit())
}

/// `$hash(data, algorithm)`: the lowercase hex digest of the UTF-8 `data`.
fn hash(args: &[Option<Value>]) -> Outcome {
    reject_surplus(args, "hash", 2)?;
    let Some(Value::String(data)) = arg(args, 0) else {
        return Err(signature_error("hash", 1));
    };
    let Some(algorithm) = arg(args, 1) else {
        return Ok(None);
    };
    let Value::String(algorithm) = algorithm else {
        return Err(signature_error("hash", 2));
    };
    let bytes = data.as_bytes();
    let digest = match algorithm.as_str() {
        "MD5" => md5::Md5::digest(bytes).to_vec(),
        "SHA-1" => sha1::Sha1::digest(bytes).to_vec(),
        "SHA-256" => sha2::Sha256::digest(bytes).to_vec(),
        "SHA-384" => sha2::Sha384::digest(bytes).to_vec(),
        "SHA-512" => sha2::Sha512::digest(bytes).to_vec(),
        other => {
            return Err(message_error(format!(
                "Hash algorithm '{other}' must be one of SHA-1, SHA-384, SHA-256, SHA-512, MD5"
            )))
        }
    };
    Ok(Some(Value::String(hex(&digest))))
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(char::from(DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    out
}

/// `$random([seed])`: a number in [0, 1); the same seed always gives the same number.
fn random(args: &[Option<Value>]) -> Outcome {
    reject_surplus(args, "random", 1)?;
    let number = match arg(args, 0) {
        None => rand::rng().random::<f64>(),
        Some(seed) => seeded_random(towards_zero(seed, "random", 1)?),
    };
    Ok(Some(json!(number)))
}

/// The first `nextDouble()` of a `java.util.Random` built with `seed`: the service's seeded
/// `$random` is that generator (`$random(42)` is 0.7275636800328681 on both), so a workflow
/// that branches on a seeded draw takes the same branch here.
#[allow(clippy::cast_precision_loss)]
fn seeded_random(seed: i64) -> f64 {
    const MULTIPLIER: u64 = 0x5_DEEC_E66D;
    const INCREMENT: u64 = 0xB;
    const MASK: u64 = (1 << 48) - 1;
    let mut state = (seed.cast_unsigned() ^ MULTIPLIER) & MASK;
    let mut next = |bits: u32| {
        state = state.wrapping_mul(MULTIPLIER).wrapping_add(INCREMENT) & MASK;
        state >> (48 - bits)
    };
    let high = next(26);
    let low = next(27);
    // 53 random bits over 2^53: exact in a double.
    ((high << 27) + low) as f64 / (1_u64 << 53) as f64
}

/// `$uuid()`: a random version 4 UUID.
fn uuid(args: &[Option<Value>]) -> Outcome {
    reject_surplus(args, "uuid", 0)?;
    let mut bytes = rand::rng().random::<u128>().to_be_bytes();
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let digits = hex(&bytes);
    Ok(Some(Value::String(format!(
        "{}-{}-{}-{}-{}",
        &digits[0..8],
        &digits[8..12],
        &digits[12..16],
        &digits[16..20],
        &digits[20..32],
    ))))
}

/// `$parse(json)`: the value a JSON text stands for; the replacement for `$eval`.
fn parse(args: &[Option<Value>]) -> Outcome {
    reject_surplus(args, "parse", 1)?;
    let Some(text) = arg(args, 0) else {
        return Ok(None);
    };
    let Value::String(text) = text else {
        return Err(signature_error("parse", 1));
    };
    serde_json::from_str::<Value>(text)
        .map(|value| Some(normalize_numbers(value)))
        .map_err(|_| message_error("Invalid JSON"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_random_is_javas_generator() {
        assert!((seeded_random(42) - 0.727_563_680_032_868_1).abs() < f64::EPSILON);
        assert!((0.0..1.0).contains(&seeded_random(-7)));
    }

    #[test]
    fn hex_is_lowercase() {
        assert_eq!(hex(&[0x00, 0xab, 0xff]), "00abff");
    }
}
