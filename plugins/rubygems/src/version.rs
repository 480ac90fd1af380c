//! Gem::Version ordering, for picking the latest version of each gem in `latest_specs.4.8.gz`.

use std::cmp::Ordering;

#[derive(Debug, PartialEq, Eq)]
enum Segment<'a> {
    /// Digits without leading zeros, compared by length then text (no overflow on long numbers).
    Number(&'a str),
    Letters(&'a str),
}

/// Gem::Version#canonical_segments: numbers and letter runs, with trailing zeros dropped from
/// the release part and from the prerelease part.
fn canonical_segments(version: &str) -> Vec<Segment<'_>> {
    let mut segments = Vec::new();
    let bytes = version.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let start = i;
        if bytes[i].is_ascii_digit() {
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                i += 1;
            }
            let digits = version[start..i].trim_start_matches('0');
            segments.push(Segment::Number(digits));
        } else if bytes[i].is_ascii_alphabetic() {
            while i < bytes.len() && bytes[i].is_ascii_alphabetic() {
                i += 1;
            }
            segments.push(Segment::Letters(&version[start..i]));
        } else {
            i += 1;
        }
    }
    let split = segments.iter().position(|s| matches!(s, Segment::Letters(_))).unwrap_or(segments.len());
    let mut prerelease = segments.split_off(split);
    let is_zero = |s: &Segment| *s == Segment::Number("");
    while segments.last().is_some_and(is_zero) {
        segments.pop();
    }
    while prerelease.last().is_some_and(is_zero) {
        prerelease.pop();
    }
    segments.extend(prerelease);
    segments
}

/// Compares two versions the way Gem::Version#<=> does: a missing segment counts as 0 and a
/// letter segment sorts before any number (`1.0.a` < `1.0`).
pub fn compare(a: &str, b: &str) -> Ordering {
    let (a, b) = (canonical_segments(a), canonical_segments(b));
    let zero = Segment::Number("");
    for i in 0..a.len().max(b.len()) {
        let order = match (a.get(i).unwrap_or(&zero), b.get(i).unwrap_or(&zero)) {
            (Segment::Number(x), Segment::Number(y)) => x.len().cmp(&y.len()).then_with(|| x.cmp(y)),
            (Segment::Letters(x), Segment::Letters(y)) => x.cmp(y),
            (Segment::Letters(_), Segment::Number(_)) => Ordering::Less,
            (Segment::Number(_), Segment::Letters(_)) => Ordering::Greater,
        };
        if order != Ordering::Equal {
            return order;
        }
    }
    Ordering::Equal
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orders_like_rubygems() {
        let ordered = ["0.9", "1.0.a", "1.0.b1", "1.0", "1.0.1", "1.2", "1.10", "2.0.0.rc1", "2.0.0", "10"];
        for pair in ordered.windows(2) {
            assert_eq!(compare(pair[0], pair[1]), Ordering::Less, "{} < {}", pair[0], pair[1]);
            assert_eq!(compare(pair[1], pair[0]), Ordering::Greater);
        }
        assert_eq!(compare("1.0", "1.0.0"), Ordering::Equal);
        assert_eq!(compare("1.01", "1.1"), Ordering::Equal);
        assert_eq!(compare("99999999999999999999999.1", "99999999999999999999999.0"), Ordering::Greater);
    }
}
