//! Schedules: cron patterns (croner: 5 fields, or 6 with seconds first; `L`, `#`, `W`, `@daily`
//! …) evaluated in the flow's time zone, fire times kept in UTC. Daylight-saving gaps and
//! overlaps follow croner's documented rules (a fixed-time job in a gap runs right after it;
//! in an overlap, once).

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};

#[derive(Debug, Clone)]
pub struct Schedule {
    cron: Cron,
    zone: Tz,
}

impl Schedule {
    /// Reads `pattern` in time zone `zone` (an IANA name); the error says what is wrong.
    pub fn parse(pattern: &str, zone: &str) -> Result<Self, String> {
        let zone = parse_zone(zone)?;
        let cron = CronParser::builder()
            .seconds(Seconds::Optional)
            .year(Year::Disallowed)
            .build()
            .parse(pattern)
            .map_err(|e| format!("`{pattern}` is not a cron pattern: {e}"))?;
        Ok(Schedule { cron, zone })
    }

    /// The first fire time strictly after `t`.
    pub fn next_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.cron
            .find_next_occurrence(&whole_second(t).with_timezone(&self.zone), false)
            .ok()
            .map(|d| d.with_timezone(&Utc))
    }

    /// The last fire time at or before `t`.
    pub fn last_at_or_before(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.cron
            .find_previous_occurrence(&whole_second(t).with_timezone(&self.zone), true)
            .ok()
            .map(|d| d.with_timezone(&Utc))
    }

    /// At `now`, with the schedule due at `due` (≤ `now`): the one time to fire (the latest
    /// due time not after `now`: missed ones before it are skipped, so downtime catches up at
    /// most one fire) and the next due time after `now`.
    pub fn catch_up(
        &self,
        due: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> (DateTime<Utc>, Option<DateTime<Utc>>) {
        let fire = self
            .last_at_or_before(now)
            .filter(|t| *t >= due)
            .unwrap_or(due);
        (fire, self.next_after(now))
    }
}

/// Cron has second resolution; croner would carry a fraction through.
fn whole_second(t: DateTime<Utc>) -> DateTime<Utc> {
    use chrono::Timelike;
    t.with_nanosecond(0).unwrap_or(t)
}

pub fn parse_zone(zone: &str) -> Result<Tz, String> {
    zone.parse::<Tz>()
        .map_err(|_| format!("`{zone}` is not a time zone (IANA names, e.g. Asia/Shanghai, UTC)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn five_fields_in_the_flows_zone() {
        // 09:00 on weekdays in Shanghai is 01:00 UTC.
        let s = Schedule::parse("0 9 * * 1-5", "Asia/Shanghai").unwrap();
        // 2026-11-27 is a Friday.
        assert_eq!(
            s.next_after(at("2026-11-27T00:30:00Z")),
            Some(at("2026-11-27T01:00:00Z"))
        );
        assert_eq!(
            s.next_after(at("2026-11-27T01:00:00Z")),
            Some(at("2026-11-30T01:00:00Z")),
            "strictly after, and the weekend is skipped"
        );
    }

    #[test]
    fn six_fields_have_seconds_first() {
        let s = Schedule::parse("*/10 * * * * *", "UTC").unwrap();
        assert_eq!(
            s.next_after(at("2026-11-27T00:00:01Z")),
            Some(at("2026-11-27T00:00:10Z"))
        );
    }

    #[test]
    fn bad_patterns_and_zones_say_why() {
        assert!(
            Schedule::parse("0 25 * * *", "UTC")
                .unwrap_err()
                .contains("not a cron")
        );
        assert!(
            Schedule::parse("every minute", "UTC")
                .unwrap_err()
                .contains("not a cron")
        );
        assert!(
            Schedule::parse("* * * * *", "Mars/Base")
                .unwrap_err()
                .contains("not a time zone")
        );
    }

    #[test]
    fn downtime_catches_up_one_fire_only() {
        let s = Schedule::parse("0 * * * *", "UTC").unwrap();
        // Due at 10:00, back at 13:20: fire once for 13:00, next at 14:00.
        let (fire, next) = s.catch_up(at("2026-11-27T10:00:00Z"), at("2026-11-27T13:20:00Z"));
        assert_eq!(fire, at("2026-11-27T13:00:00Z"));
        assert_eq!(next, Some(at("2026-11-27T14:00:00Z")));
        // On time: the due time itself.
        let (fire, _) = s.catch_up(at("2026-11-27T10:00:00Z"), at("2026-11-27T10:00:00.2Z"));
        assert_eq!(fire, at("2026-11-27T10:00:00Z"));
    }
}
