//! The wall clock as Unix time, the one way every layer reads it.

use std::time::{SystemTime, UNIX_EPOCH};

/// Now in whole seconds since the Unix epoch (0 if the clock is before it).
pub fn unix_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Now in milliseconds since the Unix epoch (0 if the clock is before it).
pub fn unix_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_and_milliseconds_agree() {
        let (s, ms) = (unix_secs(), unix_millis());
        assert!(s > 1_700_000_000, "{s}");
        assert!(ms / 1000 >= s && ms / 1000 <= s + 1, "{s} {ms}");
    }
}
