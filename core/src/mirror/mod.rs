//! Mirrors' pure rules: which URLs may be mirrored ([`url`]), how often and
//! how patiently (intervals, backoff), and which branches a push mirror
//! forwards.

pub mod url;

use std::time::Duration;

/// Longest wait between retries of a failing mirror.
pub const MAX_BACKOFF: Duration = Duration::from_secs(6 * 3600);

/// The wait before retry number `failures` (1 after the first failure):
/// `base` doubled per failure up to [`MAX_BACKOFF`], then spread by `jitter`
/// (0.0..1.0 maps to 75%..125%) so many mirrors of one failed host do not
/// retry in lockstep.
pub fn backoff(base: Duration, failures: u32, jitter: f64) -> Duration {
    let exponent = failures.saturating_sub(1).min(30);
    let delay = base.saturating_mul(1u32 << exponent).min(MAX_BACKOFF);
    delay.mul_f64(0.75 + 0.5 * jitter.clamp(0.0, 1.0))
}

/// An interval as people write it: `90`, `90s`, `10m`, `2h`, `1d`.
pub fn parse_interval(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let scale = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        _ => 0,
    };
    let secs = number
        .parse::<u64>()
        .ok()
        .filter(|n| scale > 0 && *n > 0)
        .and_then(|n| n.checked_mul(scale))
        .filter(|s| *s <= 30 * 86400)
        .ok_or_else(|| {
            format!("interval {text:?} is not valid: use a number with s, m, h or d (e.g. 10m), at most 30d")
        })?;
    Ok(Duration::from_secs(secs))
}

/// Checks a push mirror's `--branches` value: comma-separated branch names
/// or patterns with at most one `*` each (git refspec globs), e.g.
/// `main,release/*`. Returns the patterns.
pub fn parse_branch_patterns(text: &str) -> Result<Vec<String>, String> {
    let patterns: Vec<String> = text.split(',').map(|p| p.trim().to_owned()).collect();
    for pattern in &patterns {
        let valid = !pattern.is_empty()
            && pattern.len() <= 200
            && !pattern.starts_with(['-', '/', '.'])
            && !pattern.ends_with(['/', '.'])
            && !pattern.contains("..")
            && !pattern.contains("//")
            && !pattern.contains("@{")
            && !pattern.ends_with(".lock")
            && pattern.matches('*').count() <= 1
            && pattern.bytes().all(|b| {
                b.is_ascii_alphanumeric() || matches!(b, b'/' | b'.' | b'_' | b'-' | b'*' | b'+')
            });
        if !valid {
            return Err(format!(
                "branch pattern {pattern:?} is not valid: use branch names or patterns with one `*`, separated by commas (e.g. main,release/*)"
            ));
        }
    }
    Ok(patterns)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let base = Duration::from_secs(10);
        assert_eq!(backoff(base, 1, 0.5), Duration::from_secs(10));
        assert_eq!(backoff(base, 3, 0.5), Duration::from_secs(40));
        assert_eq!(backoff(base, 100, 0.5), MAX_BACKOFF);
        assert_eq!(backoff(base, 1, 0.0), Duration::from_millis(7500));
    }

    #[test]
    fn intervals() {
        assert_eq!(parse_interval("10m").unwrap(), Duration::from_secs(600));
        assert_eq!(parse_interval("45").unwrap(), Duration::from_secs(45));
        assert_eq!(parse_interval("1d").unwrap(), Duration::from_secs(86400));
        for bad in ["", "0", "m", "10x", "-5m", "99999d"] {
            assert!(parse_interval(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn branch_patterns() {
        assert_eq!(
            parse_branch_patterns("main, release/*").unwrap(),
            vec!["main", "release/*"]
        );
        for bad in ["", "-x", "a..b", "a*b*", "a b", "main,", "x.lock", "a:b"] {
            assert!(parse_branch_patterns(bad).is_err(), "{bad}");
        }
    }

    proptest! {
        #[test]
        fn backoff_stays_within_bounds(failures in 0u32..200, jitter in 0.0f64..1.0) {
            let d = backoff(Duration::from_secs(30), failures, jitter);
            prop_assert!(d >= Duration::from_millis(22_500));
            prop_assert!(d <= MAX_BACKOFF.mul_f64(1.25));
        }
    }
}
