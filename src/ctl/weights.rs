//! `blue=80 canary=20` on the command line → the JSON body of `PUT /api/v1/routes/{route}/weights`.
//!
//! Checked here so a typo is reported before anything is sent; whether each upstream exists is the server's call.

use serde_json::{Map, Value};

/// Parses `UPSTREAM=WEIGHT` arguments into the request body `{"blue": 80, "canary": 20}`.
pub(super) fn parse_pairs<S: AsRef<str>>(args: &[S]) -> Result<Value, String> {
    if args.is_empty() {
        return Err("give at least one UPSTREAM=WEIGHT pair, e.g. `blue=80 canary=20`".to_owned());
    }
    let mut body = Map::new();
    for arg in args {
        let arg = arg.as_ref();
        let Some((name, value)) = arg.split_once('=') else {
            return Err(format!("`{arg}` is not UPSTREAM=WEIGHT; write e.g. `blue=80`"));
        };
        let name = name.trim();
        if name.is_empty() {
            return Err(format!("`{arg}` has no upstream name before `=`; write e.g. `blue=80`"));
        }
        let value = value.trim();
        let weight = parse_weight(value)
            .ok_or_else(|| format!("weight for `{name}` must be a non-negative integer, got `{value}`"))?;
        if body.insert(name.to_owned(), Value::from(weight)).is_some() {
            return Err(format!("upstream `{name}` is given more than once"));
        }
    }
    Ok(Value::Object(body))
}

/// A weight as the config model holds it (`u32`); digits only, so `+5`, `-1`, `1.5` and `abc` are refused.
fn parse_weight(value: &str) -> Option<u32> {
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    value.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_become_a_json_object() {
        let body = parse_pairs(&["blue=80", "canary=20"]).unwrap();
        assert_eq!(body, serde_json::json!({"blue": 80, "canary": 20}));
        assert_eq!(
            parse_pairs(&["blue=0", "canary=0"]).unwrap(),
            serde_json::json!({"blue": 0, "canary": 0})
        );
        assert_eq!(
            parse_pairs(&["green=4294967295"]).unwrap(),
            serde_json::json!({"green": 4_294_967_295_u32})
        );
    }

    #[test]
    fn bad_weights_name_the_upstream() {
        for (arg, expected) in [
            (
                "canary=abc",
                "weight for `canary` must be a non-negative integer, got `abc`",
            ),
            (
                "canary=-1",
                "weight for `canary` must be a non-negative integer, got `-1`",
            ),
            (
                "canary=1.5",
                "weight for `canary` must be a non-negative integer, got `1.5`",
            ),
            (
                "canary=+5",
                "weight for `canary` must be a non-negative integer, got `+5`",
            ),
            ("canary=", "weight for `canary` must be a non-negative integer, got ``"),
            (
                "canary=4294967296",
                "weight for `canary` must be a non-negative integer, got `4294967296`",
            ),
        ] {
            assert_eq!(parse_pairs(&["blue=80", arg]).unwrap_err(), expected);
        }
    }

    #[test]
    fn malformed_pairs_name_the_argument() {
        assert_eq!(
            parse_pairs(&["blue80"]).unwrap_err(),
            "`blue80` is not UPSTREAM=WEIGHT; write e.g. `blue=80`"
        );
        assert_eq!(
            parse_pairs(&["=80"]).unwrap_err(),
            "`=80` has no upstream name before `=`; write e.g. `blue=80`"
        );
        assert_eq!(
            parse_pairs(&["blue=80", "blue=20"]).unwrap_err(),
            "upstream `blue` is given more than once"
        );
        assert!(parse_pairs::<&str>(&[]).unwrap_err().contains("at least one"));
    }
}
