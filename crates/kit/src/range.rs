//! `Range: bytes=...` for a representation of known length (RFC 9110 §14).
//!
//! Only single ranges are served as 206; a multi-range request is answered with the whole
//! representation (200), which RFC 9110 allows.

/// What a Range header asks of a body of `len` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeDecision {
    /// Send the whole body (no Range, an unparseable one, or several ranges).
    Full,
    /// Send bytes `start..=end`.
    Partial {
        /// First byte.
        start: u64,
        /// Last byte (inclusive).
        end: u64,
    },
    /// No byte of the range exists: answer 416 with `Content-Range: bytes */len`.
    Unsatisfiable,
}

/// Decides how to answer `header` for a body of `len` bytes.
pub fn decide(header: Option<&str>, len: u64) -> RangeDecision {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return RangeDecision::Full;
    };
    if spec.contains(',') {
        return RangeDecision::Full;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return RangeDecision::Full;
    };
    let (first, last) = (first.trim(), last.trim());
    let parse = |s: &str| -> Option<u64> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            None
        } else {
            s.parse().ok()
        }
    };
    match (first.is_empty(), last.is_empty()) {
        (true, true) => RangeDecision::Full,
        (true, false) => match parse(last) {
            Some(0) => RangeDecision::Unsatisfiable,
            Some(_) if len == 0 => RangeDecision::Unsatisfiable,
            Some(n) => RangeDecision::Partial {
                start: len.saturating_sub(n),
                end: len - 1,
            },
            None => RangeDecision::Full,
        },
        (false, _) => {
            let Some(start) = parse(first) else {
                return RangeDecision::Full;
            };
            let end = if last.is_empty() {
                u64::MAX
            } else {
                match parse(last) {
                    Some(e) if e >= start => e,
                    _ => return RangeDecision::Full,
                }
            };
            if start >= len {
                RangeDecision::Unsatisfiable
            } else {
                RangeDecision::Partial {
                    start,
                    end: end.min(len - 1),
                }
            }
        }
    }
}

/// How a `Range` header reads as RFC 9110 §14.1 writes it, before the body's length is known
/// (cached routes, whose ranges Pingora serves from the stored body).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeSyntax {
    /// `bytes=` and a list of well-formed ranges: served by the body's length.
    Ranges,
    /// Well-formed, but only zero-length suffix ranges (`bytes=-0`): no body can satisfy it
    /// (RFC 9110 §14.1.1: a suffix range is satisfiable only when its length is above zero).
    Unsatisfiable,
    /// Another unit, or not the grammar: the header is ignored (RFC 9110 §14.2).
    Ignored,
}

/// Reads a `Range` header value against RFC 9110's `ranges-specifier` for bytes:
/// `bytes=` then a comma-separated list (with optional white space, empty elements allowed)
/// of `first-last`, `first-` or `-suffix`, with `first <= last`.
pub fn syntax(value: &[u8]) -> RangeSyntax {
    let Ok(text) = std::str::from_utf8(value) else {
        return RangeSyntax::Ignored;
    };
    let Some((unit, set)) = text.split_once('=') else {
        return RangeSyntax::Ignored;
    };
    if !unit.trim().eq_ignore_ascii_case("bytes") || unit.trim().len() != unit.len() {
        return RangeSyntax::Ignored;
    }
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let mut any = false;
    let mut satisfiable = false;
    for spec in set.split(',').map(|s| s.trim_matches([' ', '\t'])) {
        if spec.is_empty() {
            continue;
        }
        let Some((first, last)) = spec.split_once('-') else {
            return RangeSyntax::Ignored;
        };
        let well_formed = match (first.is_empty(), last.is_empty()) {
            (true, false) if digits(last) => {
                satisfiable |= last.bytes().any(|b| b != b'0');
                true
            }
            (false, true) if digits(first) => {
                satisfiable = true;
                true
            }
            (false, false) if digits(first) && digits(last) => {
                satisfiable = true;
                less_or_equal(first, last)
            }
            _ => false,
        };
        if !well_formed {
            return RangeSyntax::Ignored;
        }
        any = true;
    }
    match (any, satisfiable) {
        (false, _) => RangeSyntax::Ignored,
        (true, false) => RangeSyntax::Unsatisfiable,
        (true, true) => RangeSyntax::Ranges,
    }
}

/// `a <= b` for two strings of decimal digits of any length.
fn less_or_equal(a: &str, b: &str) -> bool {
    let (a, b) = (a.trim_start_matches('0'), b.trim_start_matches('0'));
    (a.len(), a) <= (b.len(), b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use RangeDecision::*;

    #[test]
    fn single_ranges() {
        assert_eq!(decide(None, 10), Full);
        assert_eq!(decide(Some("bytes=0-4"), 10), Partial { start: 0, end: 4 });
        assert_eq!(decide(Some("bytes=5-"), 10), Partial { start: 5, end: 9 });
        assert_eq!(decide(Some("bytes=-3"), 10), Partial { start: 7, end: 9 });
        assert_eq!(decide(Some("bytes=-30"), 10), Partial { start: 0, end: 9 });
        assert_eq!(
            decide(Some("bytes=5-100"), 10),
            Partial { start: 5, end: 9 }
        );
        assert_eq!(decide(Some("bytes=10-"), 10), Unsatisfiable);
        assert_eq!(decide(Some("bytes=-0"), 10), Unsatisfiable);
        assert_eq!(decide(Some("bytes=0-0"), 0), Unsatisfiable);
        assert_eq!(decide(Some("bytes=0-1,3-4"), 10), Full);
        assert_eq!(decide(Some("bytes=4-2"), 10), Full);
        assert_eq!(decide(Some("items=0-1"), 10), Full);
        assert_eq!(decide(Some("bytes=a-b"), 10), Full);
    }

    #[test]
    fn range_syntax() {
        use super::RangeSyntax::*;
        for ok in [
            "bytes=0-4",
            "bytes=5-",
            "bytes=-3",
            "bytes=0-0,-1",
            "bytes= 0-1 , 3-4",
            "bytes=,0-1,",
            "Bytes=1-1",
            "bytes=007-10",
            "bytes=0-99999999999999999999999",
        ] {
            assert_eq!(syntax(ok.as_bytes()), Ranges, "{ok}");
        }
        for unsatisfiable in ["bytes=-0", "bytes=-000", "bytes=-0,-0"] {
            assert_eq!(syntax(unsatisfiable.as_bytes()), Unsatisfiable);
        }
        for ignored in [
            "bytes=4-2",
            "bytes=a-b",
            "bytes=",
            "bytes=,",
            "bytes=1",
            "bytes=--1",
            "bytes=1-2-3",
            "bytes =0-1",
            "items=0-1",
            "0-1",
            "bytes=0x1-2",
            "bytes=-",
            "bytes=10-9",
        ] {
            assert_eq!(syntax(ignored.as_bytes()), Ignored, "{ignored}");
        }
        assert_eq!(syntax(b"\xff"), Ignored);
    }

    fn hostile_range() -> impl Strategy<Value = String> {
        let token = prop_oneof![
            Just("bytes=".to_string()),
            Just("-".to_string()),
            Just(",".to_string()),
            Just(" ".to_string()),
            Just("0".to_string()),
            Just("18446744073709551615".to_string()),
            Just("99999999999999999999999".to_string()),
            (0u64..2000).prop_map(|n| n.to_string()),
            any::<char>().prop_map(String::from),
        ];
        proptest::collection::vec(token, 0..12).prop_map(|parts| parts.concat())
    }

    proptest! {
        #[test]
        fn any_range_header_gives_a_decision_inside_the_body(
            header in hostile_range(),
            len in prop_oneof![Just(0u64), Just(1u64), 0u64..5000, Just(u64::MAX)],
        ) {
            match decide(Some(&header), len) {
                Partial { start, end } => prop_assert!(start <= end && end < len),
                Full | Unsatisfiable => {}
            }
            let _ = syntax(header.as_bytes());
        }
    }
}
