//! Small value parsers shared by the config validator.

use std::time::Duration;

/// Splits `text` (trimmed) into its leading whole number and the unit after it; `units` and
/// `example` go into the error messages.
fn number_and_unit<'a>(
    text: &'a str,
    units: &str,
    example: &str,
) -> Result<(u64, &'a str), String> {
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("\"{text}\" needs a unit: {units}"))?;
    let (digits, unit) = text.split_at(split);
    let value = digits
        .parse()
        .map_err(|_| format!("\"{text}\" is not {example}"))?;
    Ok((value, unit))
}

/// Parses durations written as `250ms`, `5s`, `2m`, `1h` or `7d`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (value, unit) =
        number_and_unit(text, "ms, s, m, h or d", "a duration like 500ms, 5s or 2m")?;
    let seconds = |per: u64| {
        value
            .checked_mul(per)
            .map(Duration::from_secs)
            .ok_or_else(|| format!("\"{text}\" is too long"))
    };
    match unit {
        "ms" => Ok(Duration::from_millis(value)),
        "s" => seconds(1),
        "m" => seconds(60),
        "h" => seconds(3600),
        "d" => seconds(86_400),
        _ => Err(format!(
            "\"{text}\" has an unknown unit; use ms, s, m, h or d"
        )),
    }
}

/// Parses sizes written as `512B`, `64KiB`, `256MiB`, `10GiB` (or `KB`/`MB`/`GB`, powers of
/// 1000, and `TiB`/`TB`).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let (value, unit) = number_and_unit(
        text,
        "B, KiB, MiB, GiB or TiB",
        "a size like 64KiB, 256MiB or 10GiB",
    )?;
    let per: u64 = match unit.trim() {
        "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "TiB" => 1 << 40,
        "KB" | "kB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        "TB" => 1_000_000_000_000,
        _ => {
            return Err(format!(
                "\"{text}\" has an unknown unit; use B, KiB, MiB, GiB or TiB"
            ))
        }
    };
    value
        .checked_mul(per)
        .ok_or_else(|| format!("\"{text}\" is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("512B"), Ok(512));
        assert_eq!(parse_size("64KiB"), Ok(65_536));
        assert_eq!(parse_size("256MiB"), Ok(256 << 20));
        assert_eq!(parse_size("10GB"), Ok(10_000_000_000));
        assert_eq!(parse_size(" 1 GiB "), Ok(1 << 30));
        assert!(parse_size("256").is_err());
        assert!(parse_size("MiB").is_err());
        assert!(parse_size("5 parsecs").is_err());
        assert!(parse_size("99999999999999TiB").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert!(parse_duration("5").is_err());
        assert!(parse_duration("s").is_err());
        assert!(parse_duration("5 days").is_err());
        assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(7 * 86_400)));
        // Used to overflow (a panic in debug builds) instead of being refused.
        assert!(parse_duration("9999999999999999999h").is_err());
    }
}
