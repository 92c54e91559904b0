//! Human durations as written in the file: `250ms`, `5s`, `1m30s`, `2h`.

use std::time::Duration;

/// The forms a duration may take, for error messages.
const FORMS: &str =
    "use whole numbers with units ms, s, m or h, largest unit first, e.g. \"250ms\", \"5s\", \"1m30s\", \"2h\"";

/// Why a duration string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum DurationError {
    /// Empty or whitespace.
    #[error("empty duration; {FORMS}")]
    Empty,
    /// Not made of number-unit pairs.
    #[error("`{0}` is not a duration; {FORMS}")]
    Malformed(String),
    /// A unit that is not ms, s, m or h.
    #[error("unknown unit `{unit}` in `{text}`; {FORMS}")]
    UnknownUnit { text: String, unit: String },
    /// Units repeated or smaller before larger, e.g. `30s1m`.
    #[error("units out of order in `{0}`; {FORMS}")]
    Order(String),
    /// More than `Duration` holds.
    #[error("`{0}` is too long a duration")]
    Overflow(String),
    /// Zero where the caller needs a positive duration.
    #[error("must be greater than zero; {FORMS}")]
    Zero,
}

/// Parses a duration that may be zero.
pub(crate) fn parse(text: &str) -> Result<Duration, DurationError> {
    if text.trim().is_empty() {
        return Err(DurationError::Empty);
    }
    let malformed = || DurationError::Malformed(text.to_owned());
    let mut total = Duration::ZERO;
    // Rank of the previous unit: each group must use a strictly smaller unit than the one before.
    let mut previous_rank = usize::MAX;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
        if digits == 0 {
            return Err(malformed());
        }
        let (number, after) = rest.split_at(digits);
        let unit_len = after.find(|c: char| c.is_ascii_digit()).unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_len);
        if unit.is_empty() {
            return Err(malformed());
        }
        let (rank, unit_ms) = match unit {
            "h" => (3, 3_600_000),
            "m" => (2, 60_000),
            "s" => (1, 1_000),
            "ms" => (0, 1),
            _ if unit.chars().all(|c| c.is_ascii_alphabetic()) => {
                return Err(DurationError::UnknownUnit {
                    text: text.to_owned(),
                    unit: unit.to_owned(),
                });
            }
            _ => return Err(malformed()),
        };
        if rank >= previous_rank {
            return Err(DurationError::Order(text.to_owned()));
        }
        previous_rank = rank;
        let overflow = || DurationError::Overflow(text.to_owned());
        let number: u64 = number.parse().map_err(|_| overflow())?;
        let millis = number.checked_mul(unit_ms).ok_or_else(overflow)?;
        total = total.checked_add(Duration::from_millis(millis)).ok_or_else(overflow)?;
        rest = after;
    }
    Ok(total)
}

/// Parses a duration that must be greater than zero.
pub(crate) fn parse_positive(text: &str) -> Result<Duration, DurationError> {
    match parse(text)? {
        Duration::ZERO => Err(DurationError::Zero),
        duration => Ok(duration),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_units() {
        assert_eq!(parse("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse("1m"), Ok(Duration::from_secs(60)));
        assert_eq!(parse("2h"), Ok(Duration::from_secs(7200)));
    }

    #[test]
    fn combinations() {
        assert_eq!(parse("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse("1h2m3s4ms"), Ok(Duration::from_millis(3_723_004)));
        assert_eq!(parse("1s500ms"), Ok(Duration::from_millis(1500)));
    }

    #[test]
    fn zero_only_where_allowed() {
        assert_eq!(parse("0s"), Ok(Duration::ZERO));
        assert_eq!(parse_positive("0s"), Err(DurationError::Zero));
        assert_eq!(parse_positive("0m0s"), Err(DurationError::Zero));
        assert_eq!(parse_positive("1ms"), Ok(Duration::from_millis(1)));
    }

    #[test]
    fn rejects_bad_forms() {
        assert_eq!(parse(""), Err(DurationError::Empty));
        assert_eq!(parse("  "), Err(DurationError::Empty));
        assert_eq!(parse("5"), Err(DurationError::Malformed("5".into())));
        assert_eq!(parse("-1s"), Err(DurationError::Malformed("-1s".into())));
        assert_eq!(parse("1.5s"), Err(DurationError::Malformed("1.5s".into())));
        assert_eq!(parse("5 s"), Err(DurationError::Malformed("5 s".into())));
        assert_eq!(parse("s"), Err(DurationError::Malformed("s".into())));
        assert_eq!(
            parse("5x"),
            Err(DurationError::UnknownUnit {
                text: "5x".into(),
                unit: "x".into()
            })
        );
        assert_eq!(
            parse("5sec"),
            Err(DurationError::UnknownUnit {
                text: "5sec".into(),
                unit: "sec".into()
            })
        );
        assert_eq!(parse("30s1m"), Err(DurationError::Order("30s1m".into())));
        assert_eq!(parse("1s1s"), Err(DurationError::Order("1s1s".into())));
    }

    #[test]
    fn rejects_overflow() {
        assert_eq!(
            parse("99999999999999999999s"),
            Err(DurationError::Overflow("99999999999999999999s".into()))
        );
        assert_eq!(
            parse("18446744073709551615h"),
            Err(DurationError::Overflow("18446744073709551615h".into()))
        );
    }

    #[test]
    fn messages_say_what_is_valid() {
        let message = parse("5").expect_err("no unit").to_string();
        assert!(message.contains("\"1m30s\""), "{message}");
        assert!(message.contains("ms, s, m or h"), "{message}");
    }
}
