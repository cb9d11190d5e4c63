//! Capture times as text, in the two styles kaprobe prints.
//!
//! chrono formats the date and time of day once per second (kept for the
//! next call: lines come in time order, so many share a second), and the
//! microseconds are appended digit by digit. Formatting all of it with
//! chrono for every line was a tenth of `analyze --json`'s output time, and
//! most of the cost of printing a text event.

use std::cell::RefCell;

use crate::flow::Micros;

/// Room for any time chrono writes ("+262142-12-31T23:59:59.999999Z").
pub const LEN: usize = 32;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Style {
    /// `2026-11-22T18:30:23.123456Z`: RFC 3339 in UTC, for JSON.
    Rfc3339,
    /// `2026-11-22 18:30:23.123456` (UTC), the way a person reads a log.
    Log,
}

impl Style {
    /// The whole second, as chrono writes it in this style.
    fn second(self, t: chrono::DateTime<chrono::Utc>) -> String {
        match self {
            Style::Rfc3339 => {
                let whole = t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
                whole.trim_end_matches('Z').to_string()
            }
            Style::Log => t.format("%Y-%m-%d %H:%M:%S").to_string(),
        }
    }

    fn suffix(self) -> &'static [u8] {
        match self {
            Style::Rfc3339 => b"Z",
            Style::Log => b"",
        }
    }
}

/// `us` as chrono writes it in `style` with microseconds, written into
/// `buf`; `None` where chrono has no date for it.
pub fn write(us: Micros, style: Style, buf: &mut [u8; LEN]) -> Option<&str> {
    thread_local! {
        static SECOND: RefCell<(Style, i64, String)> =
            const { RefCell::new((Style::Log, i64::MIN, String::new())) };
    }
    let (second, micros) = (us.div_euclid(1_000_000), us.rem_euclid(1_000_000));
    let len = SECOND.with_borrow_mut(|(cached_style, cached, prefix)| {
        if (*cached_style, *cached) != (style, second) {
            *prefix = style.second(chrono::DateTime::from_timestamp(second, 0)?);
            (*cached_style, *cached) = (style, second);
        }
        let suffix = style.suffix();
        let len = prefix.len() + 7 + suffix.len();
        let out = buf.get_mut(..len)?;
        let (date, rest) = out.split_at_mut(prefix.len());
        date.copy_from_slice(prefix.as_bytes());
        rest[0] = b'.';
        let mut n = micros;
        for d in rest[1..7].iter_mut().rev() {
            *d = b'0' + (n % 10) as u8;
            n /= 10;
        }
        rest[7..].copy_from_slice(suffix);
        Some(len)
    })?;
    // chrono's text, ASCII digits, '.' and 'Z': always UTF-8.
    std::str::from_utf8(&buf[..len]).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ours(us: Micros, style: Style) -> Option<String> {
        write(us, style, &mut [0; LEN]).map(str::to_owned)
    }

    fn chronos(us: Micros, style: Style) -> Option<String> {
        let t = chrono::DateTime::from_timestamp_micros(us)?;
        Some(match style {
            Style::Rfc3339 => t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            Style::Log => t.format("%Y-%m-%d %H:%M:%S%.6f").to_string(),
        })
    }

    #[test]
    fn edges_are_chronos() {
        for us in [
            0,
            1,
            999_999,
            1_000_000,
            -1,
            -1_000_000,
            -1_000_001,
            1_796_193_566_072_325,
            253_402_300_799_999_999, // 9999-12-31T23:59:59.999999
            253_402_300_800_000_000, // year 10000
            crate::capture::TIME_LIMIT,
            -crate::capture::TIME_LIMIT,
            Micros::MAX,
            Micros::MIN,
        ] {
            for style in [Style::Rfc3339, Style::Log] {
                assert_eq!(ours(us, style), chronos(us, style), "{us} {style:?}");
            }
        }
    }

    #[test]
    fn the_styles_are_what_their_names_say() {
        let us = 1_796_193_566_072_325;
        let json = ours(us, Style::Rfc3339).unwrap();
        assert_eq!(json, "2026-12-02T06:39:26.072325Z");
        assert_eq!(ours(us, Style::Log).unwrap(), "2026-12-02 06:39:26.072325");
    }

    proptest! {
        /// Any capture time, in any order and either style (the cached
        /// second changes back and forth), formats as chrono formats it.
        #[test]
        fn any_time_is_chronos(times in proptest::collection::vec(
            (
                prop_oneof![
                    -crate::capture::TIME_LIMIT..crate::capture::TIME_LIMIT,
                    1_700_000_000_000_000i64..1_700_000_005_000_000,
                ],
                prop_oneof![Just(Style::Rfc3339), Just(Style::Log)],
            ),
            1..20,
        )) {
            for (us, style) in times {
                prop_assert_eq!(ours(us, style), chronos(us, style));
            }
        }
    }
}
