//! `States.Base64Encode`, `States.Base64Decode`, `States.Hash`, `States.MathRandom` and
//! `States.UUID`.

use base64::Engine;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde_json::{json, Value};
use sha2::Digest;

use super::Args;

/// The longest text `States.Base64Encode`, `States.Base64Decode` and `States.Hash` take.
const MAX_INPUT_CHARS: usize = 10_000;

pub(super) fn functions(args: &Args) -> Result<Option<Value>, String> {
    let name = args.name;
    Ok(Some(match name {
        "States.Base64Encode" => {
            let [text] = args.exactly()?;
            let text = bounded(args, text)?;
            json!(base64::engine::general_purpose::STANDARD.encode(text))
        }
        "States.Base64Decode" => {
            let [text] = args.exactly()?;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(bounded(args, text)?)
                .map_err(|e| format!("{name}: {e}"))?;
            json!(String::from_utf8(bytes).map_err(|e| format!("{name}: {e}"))?)
        }
        "States.Hash" => {
            let [data, algorithm] = args.exactly()?;
            let data = bounded(args, data)?;
            json!(hash(data.as_bytes(), args.string(algorithm)?)
                .ok_or_else(|| format!("{name}: unknown hash algorithm {algorithm}"))?)
        }
        "States.MathRandom" => random(args)?,
        "States.UUID" => {
            let [] = args.exactly()?;
            json!(uuid_v4(rand::rng().random()))
        }
        _ => return Ok(None),
    }))
}

fn bounded<'v>(args: &Args, value: &'v Value) -> Result<&'v str, String> {
    let text = args.string(value)?;
    if text.chars().count() > MAX_INPUT_CHARS {
        return Err(format!(
            "{}: the input is longer than {MAX_INPUT_CHARS} characters",
            args.name
        ));
    }
    Ok(text)
}

/// The lowercase hex digest, or `None` for an algorithm the service does not offer.
fn hash(data: &[u8], algorithm: &str) -> Option<String> {
    let digest: Vec<u8> = match algorithm {
        "MD5" => md5::Md5::digest(data).to_vec(),
        "SHA-1" => sha1::Sha1::digest(data).to_vec(),
        "SHA-256" => sha2::Sha256::digest(data).to_vec(),
        "SHA-384" => sha2::Sha384::digest(data).to_vec(),
        "SHA-512" => sha2::Sha512::digest(data).to_vec(),
        _ => return None,
    };
    Some(digest.iter().map(|b| format!("{b:02x}")).collect())
}

/// `States.MathRandom(start, end[, seed])`: an integer in `[start, end)`.
fn random(args: &Args) -> Result<Value, String> {
    let (start, end, seed) = match args.values.as_slice() {
        [start, end] => (start, end, None),
        [start, end, seed] => (start, end, Some(args.integer(seed)?)),
        _ => return Err(format!("{} takes 2 or 3 arguments", args.name)),
    };
    let (start, end) = (args.integer(start)?, args.integer(end)?);
    if start >= end {
        return Err(format!(
            "{}: the start {start} must be less than the end {end}",
            args.name
        ));
    }
    let value = match seed {
        // A seed makes the draw repeatable here; the service's own sequence differs.
        Some(seed) => StdRng::seed_from_u64(seed.unsigned_abs()).random_range(start..end),
        None => rand::rng().random_range(start..end),
    };
    Ok(json!(value))
}

/// A version 4 UUID from 16 random bytes.
fn uuid_v4(mut bytes: [u8; 16]) -> String {
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_match_known_digests() {
        assert_eq!(
            hash(b"input data", "SHA-1").as_deref(),
            Some("aaff4a450a104cd177d28d18d74485e8cae074b7")
        );
        assert_eq!(
            hash(b"", "MD5").as_deref(),
            Some("d41d8cd98f00b204e9800998ecf8427e")
        );
        assert_eq!(hash(b"x", "SHA-3"), None);
    }

    #[test]
    fn uuids_have_version_and_variant() {
        let id = uuid_v4([0xff; 16]);
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
        assert_eq!(&id[19..20], "b");
    }
}
