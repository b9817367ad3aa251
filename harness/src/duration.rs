//! The one rule the harness reads durations with, the product's own (`src/config/parse.rs`): one or
//! more numbers each with a unit, `500ms`, `3s`, `1.5s`, `1m30s`, `2h`; units `h`, `m`, `s`,
//! `ms`, `us` (`µs`), `ns`. A bare number such as `7` is refused, as the product refuses it, so a
//! flag the harness accepts is a flag the elector accepts too.
//!
//! Written here rather than imported: the harness shares no code with what it tests.

use std::time::Duration;

/// Why a text is not a duration; each message says how to write one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("the duration is empty; write one such as 3s or 500ms")]
    Empty,
    #[error("{text:?} has no unit; write {text}s for seconds (or {text}ms, {text}m)")]
    NoUnit { text: String },
    #[error("{text:?} is not a duration: expected a number at {rest:?}; write e.g. 3s, 500ms or 1m30s")]
    NoNumber { text: String, rest: String },
    #[error("{text:?} has a malformed number {number:?}; write e.g. 1.5s")]
    Malformed { text: String, number: String },
    #[error("{text:?} has an unknown unit {unit:?}; use h, m, s, ms, us or ns (e.g. 1m30s)")]
    UnknownUnit { text: String, unit: String },
    #[error("{text:?} is too long to represent; write a shorter duration")]
    TooLong { text: String },
}

/// Parses `text` by the product's rule (see the module documentation).
pub fn parse_duration(text: &str) -> Result<Duration, Error> {
    let text = text.trim();
    if text.is_empty() {
        return Err(Error::Empty);
    }
    let numeric = |c: char| c.is_ascii_digit() || c == '.';
    if text.chars().all(numeric) {
        return Err(Error::NoUnit {
            text: text.to_owned(),
        });
    }
    let too_long = || Error::TooLong {
        text: text.to_owned(),
    };
    let mut total_ns: u128 = 0;
    let mut rest = text;
    while !rest.is_empty() {
        let number = &rest[..rest.find(|c| !numeric(c)).unwrap_or(rest.len())];
        if number.is_empty() {
            return Err(Error::NoNumber {
                text: text.to_owned(),
                rest: rest.to_owned(),
            });
        }
        let after = &rest[number.len()..];
        let unit = &after[..after.find(numeric).unwrap_or(after.len())];
        rest = &after[unit.len()..];
        let unit_ns = unit_ns(unit).ok_or_else(|| match unit {
            "" => Error::NoUnit {
                text: text.to_owned(),
            },
            _ => Error::UnknownUnit {
                text: text.to_owned(),
                unit: unit.to_owned(),
            },
        })?;
        let malformed = || Error::Malformed {
            text: text.to_owned(),
            number: number.to_owned(),
        };
        let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
        if (whole.is_empty() && fraction.is_empty()) || fraction.contains('.') {
            return Err(malformed());
        }
        let whole: u128 = if whole.is_empty() {
            0
        } else {
            whole.parse().map_err(|_| too_long())?
        };
        let mut term = whole.checked_mul(unit_ns).ok_or_else(too_long)?;
        let mut place = unit_ns;
        for digit in fraction.chars().take(18).filter_map(|c| c.to_digit(10)) {
            place /= 10;
            term += u128::from(digit) * place;
        }
        total_ns = total_ns.checked_add(term).ok_or_else(too_long)?;
    }
    let secs = u64::try_from(total_ns / 1_000_000_000).map_err(|_| too_long())?;
    let nanos = u32::try_from(total_ns % 1_000_000_000).map_err(|_| too_long())?;
    Ok(Duration::new(secs, nanos))
}

fn unit_ns(unit: &str) -> Option<u128> {
    Some(match unit {
        "h" => 3_600_000_000_000,
        "m" => 60_000_000_000,
        "s" => 1_000_000_000,
        "ms" => 1_000_000,
        "us" | "µs" => 1_000,
        "ns" => 1,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_the_elector_flags() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("3s"), Ok(Duration::from_secs(3)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_duration("250us"), Ok(Duration::from_micros(250)));
        assert_eq!(parse_duration(" 15s "), Ok(Duration::from_secs(15)));
    }

    #[test]
    fn a_bare_number_is_refused_as_the_product_refuses_it() {
        let refused = parse_duration("7");
        assert_eq!(refused, Err(Error::NoUnit { text: "7".into() }));
        let message = refused.map_err(|e| e.to_string()).err().unwrap_or_default();
        assert!(
            message.contains("7s"),
            "the error must suggest the fix, got {message:?}"
        );
        assert!(matches!(parse_duration("1m30"), Err(Error::NoUnit { .. })));
    }

    #[test]
    fn malformed_durations_are_refused_with_the_reason() {
        assert_eq!(parse_duration(""), Err(Error::Empty));
        assert!(matches!(parse_duration("s"), Err(Error::NoNumber { .. })));
        assert!(matches!(parse_duration("3d"), Err(Error::UnknownUnit { .. })));
        assert!(matches!(parse_duration(".s"), Err(Error::Malformed { .. })));
        assert!(matches!(parse_duration("1.2.3s"), Err(Error::Malformed { .. })));
        assert!(matches!(
            parse_duration("99999999999999999999999h"),
            Err(Error::TooLong { .. })
        ));
    }
}
