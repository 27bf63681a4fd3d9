//! Human units for text output: `506 MB`, `159k rows/s`, `256,000 rows`. `--json` keeps exact
//! numbers; these are for people.

/// A count with thousands separators: `256,000`.
pub(crate) fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `x` with an SI prefix (k, M, G, T, P, E) and three significant digits: `159k`, `2.06M`, `812`.
pub(crate) fn si(x: f64) -> String {
    const PREFIXES: [&str; 7] = ["", "k", "M", "G", "T", "P", "E"];
    if !x.is_finite() || x < 0.0 {
        return format!("{x}");
    }
    let mut v = x;
    let mut p = 0;
    // Round first, so that 999,999 becomes 1.00M rather than 1000k.
    while p + 1 < PREFIXES.len() && round3(v) >= 1000.0 {
        v /= 1000.0;
        p += 1;
    }
    let v = round3(v);
    let text = if (p == 0 && v == v.trunc()) || v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    };
    format!("{text}{}", PREFIXES[p])
}

/// Bytes in decimal units: `506 MB`, `3.03 GB`, `812 B`.
pub(crate) fn bytes(n: u64) -> String {
    let s = si(n as f64);
    match s.strip_suffix(|c: char| c.is_ascii_alphabetic()) {
        Some(num) => format!("{num} {}B", &s[num.len()..]),
        None => format!("{s} B"),
    }
}

/// `x` rounded to three significant digits.
fn round3(x: f64) -> f64 {
    if x == 0.0 {
        return 0.0;
    }
    let scale = 10f64.powi(2 - x.log10().floor() as i32);
    (x * scale).round() / scale
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn examples() {
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(256_000), "256,000");
        assert_eq!(count(1_536_000), "1,536,000");
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(812), "812 B");
        assert_eq!(bytes(435_961_227), "436 MB");
        assert_eq!(bytes(3_029_059_622), "3.03 GB");
        assert_eq!(bytes(999_999), "1.00 MB");
        assert_eq!(si(159_321.0), "159k");
        assert_eq!(si(81_803.931_4), "81.8k");
        assert_eq!(si(2_064.17), "2.06k");
        assert_eq!(si(12.5), "12.5");
    }

    proptest! {
        /// The text parses back to within half a unit of the third significant digit, and
        /// never has more than three significant digits.
        #[test]
        fn si_is_three_significant_digits_of_the_value(n in any::<u64>()) {
            let s = si(n as f64);
            let (num, mult) = match s.chars().last() {
                Some('k') => (&s[..s.len() - 1], 1e3),
                Some('M') => (&s[..s.len() - 1], 1e6),
                Some('G') => (&s[..s.len() - 1], 1e9),
                Some('T') => (&s[..s.len() - 1], 1e12),
                Some('P') => (&s[..s.len() - 1], 1e15),
                Some('E') => (&s[..s.len() - 1], 1e18),
                _ => (s.as_str(), 1.0),
            };
            let back: f64 = num.parse::<f64>().unwrap() * mult;
            let tolerance = (n as f64) * 0.005 + 0.5;
            prop_assert!((back - n as f64).abs() <= tolerance, "{} -> {} -> {}", n, s, back);
            prop_assert!(num.chars().filter(char::is_ascii_digit).count() <= 3 || n < 1000, "{}", s);
        }

        /// Separators come every three digits from the right, and removing them gives the
        /// number back.
        #[test]
        fn count_round_trips(n in any::<u64>()) {
            let s = count(n);
            prop_assert_eq!(s.replace(',', "").parse::<u64>().unwrap(), n);
            for group in s.split(',').skip(1) {
                prop_assert_eq!(group.len(), 3);
            }
        }
    }
}
