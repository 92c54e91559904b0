//! Request bodies: read with a size limit, and the weights body checked field by field.

use std::error::Error as StdError;
use std::fmt;

use bytes::Bytes;
use http::HeaderMap;
use http::header::CONTENT_LENGTH;
use http_body::Body;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::Value;
use sluice_config::Weight;

use crate::error::ApiError;

/// The largest request body read: 64 KiB.
pub(crate) const LIMIT: usize = 64 * 1024;

const SHAPE: &str = "the body must be a JSON object of upstream weights, e.g. {\"blue\": 90, \"canary\": 10}";

/// Reads the whole body, refusing with 413 one over [`LIMIT`]; a declared `content-length` over the limit is
/// refused before reading anything.
pub(crate) async fn read<B>(headers: &HeaderMap, body: B) -> Result<Bytes, ApiError>
where
    B: Body<Data = Bytes>,
    B::Error: Into<Box<dyn StdError + Send + Sync>>,
{
    let too_large = || ApiError::TooLarge(format!("request bodies are limited to {} KiB", LIMIT / 1024));
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > LIMIT as u64) {
        return Err(too_large());
    }
    match Limited::new(body, LIMIT).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(err) if err.downcast_ref::<LengthLimitError>().is_some() => Err(too_large()),
        Err(err) => Err(ApiError::BadRequest(format!("could not read the request body: {err}"))),
    }
}

/// Parses a weights body: a JSON object whose keys are upstream names and values non-negative integers that fit
/// in 32 bits. Which names exist is the store's to say.
pub(crate) fn weights(body: &[u8]) -> Result<Vec<Weight>, ApiError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::BadRequest(format!("the body is not valid JSON ({e}); {SHAPE}")))?;
    if !value.is_object() {
        return Err(ApiError::BadRequest(format!("{SHAPE}; got {}", kind(&value))));
    }
    // Parsed again as pairs: a JSON object may repeat a key, and silently keeping the last would hide a typo.
    let Pairs(pairs) = serde_json::from_slice(body).map_err(|e| ApiError::BadRequest(format!("{e}; {SHAPE}")))?;
    let mut weights: Vec<Weight> = Vec::with_capacity(pairs.len());
    for (upstream, value) in pairs {
        if weights.iter().any(|w| w.upstream == upstream) {
            return Err(ApiError::BadRequest(format!(
                "upstream `{upstream}` appears more than once"
            )));
        }
        let weight = value.as_u64().and_then(|w| u32::try_from(w).ok()).ok_or_else(|| {
            ApiError::BadRequest(format!(
                "weight of `{upstream}` must be a non-negative integer, got {}",
                Shown(&value)
            ))
        })?;
        weights.push(Weight { upstream, weight });
    }
    Ok(weights)
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A JSON value as the client wrote it, cut short if long.
struct Shown<'a>(&'a Value);

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const MAX: usize = 40;
        let text = self.0.to_string();
        match text.char_indices().nth(MAX) {
            Some((cut, _)) => write!(f, "{}…", &text[..cut]),
            None => f.write_str(&text),
        }
    }
}

/// A JSON object's members in document order, repeats kept.
struct Pairs(Vec<(String, Value)>);

impl<'de> Deserialize<'de> for Pairs {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Pairs, D::Error> {
        struct PairsVisitor;
        impl<'de> Visitor<'de> for PairsVisitor {
            type Value = Pairs;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Pairs, A::Error> {
                let mut pairs = Vec::new();
                while let Some(pair) = map.next_entry()? {
                    pairs.push(pair);
                }
                Ok(Pairs(pairs))
            }
        }
        deserializer.deserialize_map(PairsVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(body: &str) -> String {
        match weights(body.as_bytes()) {
            Err(ApiError::BadRequest(message)) => message,
            other => panic!("{body}: expected a 400, got {other:?}"),
        }
    }

    #[test]
    fn weights_in_any_order() {
        let w = weights(br#"{"canary": 20, "blue": 80}"#).unwrap();
        assert_eq!(w.len(), 2);
        assert!(w.contains(&Weight {
            upstream: "blue".into(),
            weight: 80
        }));
        assert!(w.contains(&Weight {
            upstream: "canary".into(),
            weight: 20
        }));
        assert_eq!(weights(br#"{"blue": 0}"#).unwrap()[0].weight, 0);
        assert_eq!(weights(br#"{"blue": 4294967295}"#).unwrap()[0].weight, u32::MAX);
        assert!(weights(b"{}").unwrap().is_empty(), "the store refuses an empty set");
    }

    #[test]
    fn bad_values_name_the_field() {
        assert_eq!(
            error(r#"{"blue": -1}"#),
            "weight of `blue` must be a non-negative integer, got -1"
        );
        assert_eq!(
            error(r#"{"blue": "x"}"#),
            "weight of `blue` must be a non-negative integer, got \"x\""
        );
        assert_eq!(
            error(r#"{"blue": 1.5}"#),
            "weight of `blue` must be a non-negative integer, got 1.5"
        );
        assert_eq!(
            error(r#"{"a": 1, "blue": null}"#),
            "weight of `blue` must be a non-negative integer, got null"
        );
        assert!(error(r#"{"blue": 4294967296}"#).contains("got 4294967296"));
        let long = format!(r#"{{"blue": "{}"}}"#, "x".repeat(1000));
        assert!(error(&long).len() < 120);
    }

    #[test]
    fn wrong_shapes_say_what_is_expected() {
        for body in ["[80, 20]", "80", "\"blue\"", "null"] {
            let message = error(body);
            assert!(
                message.contains("JSON object") && message.contains("\"blue\": 90"),
                "{message}"
            );
        }
        assert!(error("{\"blue\": 80,").contains("not valid JSON"));
        assert!(error("").contains("not valid JSON"));
        assert!(error(r#"{"blue": 1, "blue": 2}"#).contains("more than once"));
    }
}
