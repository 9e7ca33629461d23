//! Scalar values of `zoo.cfg` as ZooKeeper 3.8 reads them: Java's
//! `Integer.parseInt`, `Integer.decode` (keys read as system properties) and
//! `Boolean` spellings, all within Java's 32-bit `int` range.

use super::error::Problem;

/// Java's `int` range, which every integer key of zoo.cfg is read into.
pub(super) fn within_i32(v: i64) -> Result<i64, Problem> {
    if v < i64::from(i32::MIN) || v > i64::from(i32::MAX) {
        return Err(Problem::OutOfRange {
            value: v,
            min: i32::MIN.into(),
            max: i32::MAX.into(),
        });
    }
    Ok(v)
}

/// Java `Integer.parseInt`: optional sign, decimal digits, 32-bit range.
pub(super) fn parse_int(value: &str) -> Result<i64, Problem> {
    let v: i64 = value.parse().map_err(|_| Problem::NotAnInteger {
        value: value.into(),
    })?;
    within_i32(v)
}

/// Java `Integer.decode`, which `Integer.getInteger` uses for the keys
/// ZooKeeper reads as system properties: `0x`/`#` hex, leading-`0` octal,
/// else decimal. (Java silently falls back to the default on a bad value;
/// zkfle rejects it.)
pub(super) fn parse_decode_int(value: &str) -> Result<i64, Problem> {
    let bad = || Problem::NotAnInteger {
        value: value.into(),
    };
    let (neg, body) = match value.as_bytes().first() {
        Some(b'-') => (true, &value[1..]),
        Some(b'+') => (false, &value[1..]),
        _ => (false, value),
    };
    let (radix, digits) = if let Some(h) = body
        .strip_prefix("0x")
        .or_else(|| body.strip_prefix("0X"))
        .or_else(|| body.strip_prefix('#'))
    {
        (16, h)
    } else if body.len() > 1 && body.starts_with('0') {
        (8, &body[1..])
    } else {
        (10, body)
    };
    if digits.is_empty() || digits.starts_with(['+', '-']) {
        return Err(bad());
    }
    let mag = i64::from_str_radix(digits, radix).map_err(|_| bad())?;
    let v = if neg { -mag } else { mag };
    within_i32(v)
}

/// ZooKeeper's boolean keys: `true`/`false`, any case.
pub(super) fn parse_bool(value: &str) -> Result<bool, Problem> {
    if value.eq_ignore_ascii_case("true") {
        Ok(true)
    } else if value.eq_ignore_ascii_case("false") {
        Ok(false)
    } else {
        Err(Problem::NotABoolean {
            value: value.into(),
        })
    }
}

/// A strictly positive 32-bit integer.
pub(super) fn parse_positive(value: &str) -> Result<i64, Problem> {
    let v = parse_int(value)?;
    if v <= 0 {
        return Err(Problem::NotPositive { value: v });
    }
    Ok(v)
}

/// The numeric id after the first `.` of `server.N`, `group.N`,
/// `weight.N` (ZooKeeper takes everything after the first dot).
pub(super) fn key_id(key: &str) -> Result<i64, Problem> {
    let text = key.split_once('.').map_or(key, |(_, id)| id);
    text.parse()
        .map_err(|_| Problem::BadId { text: text.into() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_int_follows_java_integer_decode() {
        assert_eq!(parse_decode_int("10"), Ok(10));
        assert_eq!(parse_decode_int("0x10"), Ok(16));
        assert_eq!(parse_decode_int("#10"), Ok(16));
        assert_eq!(parse_decode_int("010"), Ok(8));
        assert_eq!(parse_decode_int("-5"), Ok(-5));
        assert_eq!(parse_decode_int("0"), Ok(0));
        assert!(parse_decode_int("0x").is_err());
        assert!(parse_decode_int("--5").is_err());
        assert!(parse_decode_int("08").is_err());
        assert!(parse_decode_int("4294967296").is_err());
    }
}
