//! POSIX cron schedules as `on.schedule` uses them (five fields, UTC).

use jiff::civil::DateTime;

/// A parsed schedule: one bit per allowed value of each field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cron {
    minutes: u64,
    hours: u64,
    days: u64,
    months: u64,
    weekdays: u64,
    /// POSIX: when both day fields are restricted, either may match.
    either_day: bool,
}

const MONTHS: &[&str] = &[
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
const WEEKDAYS: &[&str] = &["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

impl Cron {
    /// Parses `minute hour day-of-month month day-of-week`.
    pub fn parse(text: &str) -> Result<Cron, String> {
        let fields: Vec<&str> = text.split_whitespace().collect();
        let [minute, hour, day, month, weekday] = fields[..] else {
            return Err(format!(
                "cron `{text}` has {} fields; expected 5: minute hour day-of-month month day-of-week",
                fields.len()
            ));
        };
        let weekdays = field(weekday, "day of week", 0, 7, WEEKDAYS)?;
        // 7 is another name for Sunday.
        let weekdays = (weekdays | (weekdays >> 7)) & 0x7f;
        Ok(Cron {
            minutes: field(minute, "minute", 0, 59, &[])?,
            hours: field(hour, "hour", 0, 23, &[])?,
            days: field(day, "day of month", 1, 31, &[])?,
            months: field(month, "month", 1, 12, MONTHS)?,
            weekdays,
            either_day: day != "*" && weekday != "*",
        })
    }

    /// Whether the schedule fires in the minute starting at `at` (UTC).
    pub fn matches(&self, at: DateTime) -> bool {
        let bit = |set: u64, v: i64| set & (1u64 << v) != 0;
        let day = bit(self.days, i64::from(at.day()));
        let weekday = bit(
            self.weekdays,
            i64::from(at.weekday().to_sunday_zero_offset()),
        );
        let day_ok = if self.either_day {
            day || weekday
        } else {
            day && weekday
        };
        bit(self.minutes, i64::from(at.minute()))
            && bit(self.hours, i64::from(at.hour()))
            && bit(self.months, i64::from(at.month()))
            && day_ok
    }
}

fn field(text: &str, what: &str, min: u32, max: u32, names: &[&str]) -> Result<u64, String> {
    let bad = |why: &str| format!("cron {what} `{text}`: {why}");
    let value = |v: &str| -> Result<u32, String> {
        let named = names
            .iter()
            .position(|n| n.eq_ignore_ascii_case(v))
            .map(|i| i as u32 + min);
        let n = named
            .or_else(|| v.parse().ok())
            .ok_or_else(|| bad(&format!("`{v}` is not a number")))?;
        if n < min || n > max {
            return Err(bad(&format!("{n} is outside {min}-{max}")));
        }
        Ok(n)
    };
    let mut set = 0u64;
    for part in text.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => (
                r,
                s.parse::<u32>()
                    .ok()
                    .filter(|s| *s > 0)
                    .ok_or_else(|| bad("step must be a positive number"))?,
            ),
            None => (part, 1),
        };
        let (lo, hi) = match range {
            "*" => (min, max),
            r => match r.split_once('-') {
                Some((a, b)) => (value(a)?, value(b)?),
                None if step > 1 => (value(r)?, max),
                None => (value(r)?, value(r)?),
            },
        };
        if lo > hi {
            return Err(bad(&format!("range {lo}-{hi} is reversed")));
        }
        for v in (lo..=hi).step_by(step as usize) {
            set |= 1 << v;
        }
    }
    Ok(set)
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;
    use proptest::prelude::*;

    #[test]
    fn parses_and_matches() {
        let c = Cron::parse("30 5 * * 1,3").expect("valid");
        assert!(c.matches(date(2024, 1, 1).at(5, 30, 0, 0)), "a Monday");
        assert!(!c.matches(date(2024, 1, 2).at(5, 30, 0, 0)), "a Tuesday");
        let c = Cron::parse("*/15 0 1,15 * sun").expect("valid");
        assert!(
            c.matches(date(2024, 1, 7).at(0, 45, 0, 0)),
            "either day field may match"
        );
        assert!(c.matches(date(2024, 1, 15).at(0, 0, 0, 0)));
        assert!(!c.matches(date(2024, 1, 16).at(0, 0, 0, 0)));
        assert!(
            Cron::parse("0 0 * JAN-MAR 7")
                .expect("names")
                .matches(date(2024, 2, 4).at(0, 0, 0, 0))
        );
    }

    #[test]
    fn reports_bad_schedules() {
        assert!(
            Cron::parse("* * * *")
                .expect_err("4 fields")
                .contains("expected 5")
        );
        assert!(
            Cron::parse("60 * * * *")
                .expect_err("range")
                .contains("outside 0-59")
        );
        assert!(Cron::parse("*/0 * * * *").is_err());
        assert!(Cron::parse("5-1 * * * *").is_err());
        assert!(Cron::parse("a * * * *").is_err());
    }

    proptest! {
        #[test]
        fn never_panics(text in "[0-9*/,a-z -]{0,30}") {
            let _ = Cron::parse(&text);
        }
    }
}
