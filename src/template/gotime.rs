//! Go's `time.Time` (UTC only) and `time.Duration` as template values: `String()`, the
//! `Format` layout language and the methods templates call on them.
#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

use super::value::Value;
use std::fmt::{self, Write as _};

/// An instant in UTC: seconds since the Unix epoch and nanoseconds within the second.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct GoTime {
    pub secs: i64,
    pub nanos: u32,
}

/// Calendar fields of a [`GoTime`].
struct Civil {
    year: i64,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
    /// 0 = Sunday.
    weekday: u32,
    yday: u32,
}

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const DAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];

impl GoTime {
    fn civil(&self) -> Civil {
        let days = self.secs.div_euclid(86_400);
        let sod = self.secs.rem_euclid(86_400);
        let (year, month, day) = argus_query::calendar::civil_from_days(days);
        let (month, day) = (i64::from(month), i64::from(day));
        let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
        const CUM: [i64; 12] = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334];
        let idx = usize::try_from(month - 1).unwrap_or(0);
        let yday = CUM.get(idx).copied().unwrap_or(0) + day + i64::from(leap && month > 2);
        Civil {
            year,
            month: u32::try_from(month).unwrap_or(1),
            day: u32::try_from(day).unwrap_or(1),
            hour: u32::try_from(sod / 3600).unwrap_or(0),
            minute: u32::try_from(sod % 3600 / 60).unwrap_or(0),
            second: u32::try_from(sod % 60).unwrap_or(0),
            weekday: u32::try_from((days + 4).rem_euclid(7)).unwrap_or(0),
            yday: u32::try_from(yday).unwrap_or(1),
        }
    }

    /// Go's `Time.Format` for a UTC time.
    pub(super) fn format(&self, layout: &str) -> String {
        let c = self.civil();
        let mut out = String::new();
        let mut rest = layout;
        while !rest.is_empty() {
            let (tok, len) = next_token(rest);
            let Some(tok) = tok else {
                let ch = rest.chars().next().unwrap_or(' ');
                out.push(ch);
                rest = rest.get(ch.len_utf8()..).unwrap_or("");
                continue;
            };
            rest = rest.get(len..).unwrap_or("");
            let month = MONTHS
                .get((c.month as usize).saturating_sub(1))
                .copied()
                .unwrap_or("");
            let weekday = DAYS.get(c.weekday as usize).copied().unwrap_or("");
            let hour12 = if c.hour.is_multiple_of(12) {
                12
            } else {
                c.hour % 12
            };
            let _ = match tok {
                Tok::Year4 => write!(out, "{:04}", c.year),
                Tok::Year2 => write!(out, "{:02}", c.year.rem_euclid(100)),
                Tok::MonthLong => write!(out, "{month}"),
                Tok::MonthShort => write!(out, "{}", month.get(..3).unwrap_or("")),
                Tok::Month2 => write!(out, "{:02}", c.month),
                Tok::Month1 => write!(out, "{}", c.month),
                Tok::DayLong => write!(out, "{weekday}"),
                Tok::DayShort => write!(out, "{}", weekday.get(..3).unwrap_or("")),
                Tok::Day2 => write!(out, "{:02}", c.day),
                Tok::DaySpace => write!(out, "{:>2}", c.day),
                Tok::Day1 => write!(out, "{}", c.day),
                Tok::YDay3 => write!(out, "{:03}", c.yday),
                Tok::Hour24 => write!(out, "{:02}", c.hour),
                Tok::Hour12Pad => write!(out, "{hour12:02}"),
                Tok::Hour12 => write!(out, "{hour12}"),
                Tok::Minute2 => write!(out, "{:02}", c.minute),
                Tok::Minute1 => write!(out, "{}", c.minute),
                Tok::Second2 => write!(out, "{:02}", c.second),
                Tok::Second1 => write!(out, "{}", c.second),
                Tok::PmUpper => write!(out, "{}", if c.hour >= 12 { "PM" } else { "AM" }),
                Tok::PmLower => write!(out, "{}", if c.hour >= 12 { "pm" } else { "am" }),
                Tok::ZoneName => write!(out, "UTC"),
                Tok::ZoneZ(s) => write!(out, "{}", if s.starts_with('Z') { "Z" } else { s }),
                Tok::Offset(s) => write!(out, "{s}"),
                Tok::Frac { sep, digits, trim } => {
                    let f = format!("{:09}", self.nanos);
                    let mut f = f.get(..digits).unwrap_or("").to_string();
                    if trim {
                        f.truncate(f.trim_end_matches('0').len());
                    }
                    if !f.is_empty() {
                        out.push(sep);
                        out.push_str(&f);
                    }
                    Ok(())
                }
            };
        }
        out
    }

    fn method(&self, m: Method, args: &[Value]) -> Result<Value, String> {
        let c = self.civil();
        Ok(match m {
            Method::Format => match args.first() {
                Some(Value::Str(layout)) => Value::str(&self.format(layout)),
                _ => return Err("wrong type for value; expected string".into()),
            },
            Method::String => Value::str(&self.to_string()),
            Method::Unix => Value::Int(self.secs),
            Method::UnixMilli => Value::Int(
                self.secs
                    .saturating_mul(1000)
                    .saturating_add(i64::from(self.nanos / 1_000_000)),
            ),
            Method::UnixNano => Value::Int(
                self.secs
                    .saturating_mul(1_000_000_000)
                    .saturating_add(i64::from(self.nanos)),
            ),
            Method::Year => Value::Int(c.year),
            Method::Month => Value::Named(
                MONTHS
                    .get((c.month as usize).saturating_sub(1))
                    .copied()
                    .unwrap_or(""),
            ),
            Method::Day => Value::Int(i64::from(c.day)),
            Method::YearDay => Value::Int(i64::from(c.yday)),
            Method::Weekday => Value::Named(DAYS.get(c.weekday as usize).copied().unwrap_or("")),
            Method::Hour => Value::Int(i64::from(c.hour)),
            Method::Minute => Value::Int(i64::from(c.minute)),
            Method::Second => Value::Int(i64::from(c.second)),
            Method::Nanosecond => Value::Int(i64::from(self.nanos)),
            Method::Utc => Value::Time(*self),
            _ => return Err(format!("BUG: {m:?} is not a time.Time method")),
        })
    }
}

impl fmt::Display for GoTime {
    /// Go's `Time.String()` for UTC: `2015-06-23 13:19:44.128 +0000 UTC`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.format("2006-01-02 15:04:05.999999999 -0700 MST"))
    }
}

#[derive(Clone, Copy)]
enum Tok {
    Year4,
    Year2,
    MonthLong,
    MonthShort,
    Month2,
    Month1,
    DayLong,
    DayShort,
    Day2,
    DaySpace,
    Day1,
    YDay3,
    Hour24,
    Hour12Pad,
    Hour12,
    Minute2,
    Minute1,
    Second2,
    Second1,
    PmUpper,
    PmLower,
    ZoneName,
    ZoneZ(&'static str),
    Offset(&'static str),
    Frac {
        sep: char,
        digits: usize,
        trim: bool,
    },
}

/// The layout element at the start of `s` (Go's `nextStdChunk`, in order of precedence).
fn next_token(s: &str) -> (Option<Tok>, usize) {
    const FIXED: &[(&str, Tok)] = &[
        ("January", Tok::MonthLong),
        ("Jan", Tok::MonthShort),
        ("Monday", Tok::DayLong),
        ("Mon", Tok::DayShort),
        ("MST", Tok::ZoneName),
        ("2006", Tok::Year4),
        ("01", Tok::Month2),
        ("02", Tok::Day2),
        ("03", Tok::Hour12Pad),
        ("04", Tok::Minute2),
        ("05", Tok::Second2),
        ("06", Tok::Year2),
        ("002", Tok::YDay3),
        ("15", Tok::Hour24),
        ("1", Tok::Month1),
        ("2", Tok::Day1),
        ("3", Tok::Hour12),
        ("4", Tok::Minute1),
        ("5", Tok::Second1),
        ("PM", Tok::PmUpper),
        ("pm", Tok::PmLower),
        ("_2", Tok::DaySpace),
        ("-07:00:00", Tok::Offset("+00:00:00")),
        ("-0700", Tok::Offset("+0000")),
        ("-07:00", Tok::Offset("+00:00")),
        ("-07", Tok::Offset("+00")),
        ("Z07:00:00", Tok::ZoneZ("Z")),
        ("Z0700", Tok::ZoneZ("Z")),
        ("Z07:00", Tok::ZoneZ("Z")),
        ("Z07", Tok::ZoneZ("Z")),
    ];
    // Longest match first among the candidates that share a prefix.
    let mut best: Option<(usize, Tok)> = None;
    for (pat, mk) in FIXED {
        if s.starts_with(pat) && best.is_none_or(|(l, _)| pat.len() > l) {
            best = Some((pat.len(), *mk));
        }
    }
    // Fractional seconds: `.000`/`.999` (or `,`) right after a seconds field.
    if let Some(sep) = s.chars().next().filter(|c| *c == '.' || *c == ',') {
        let body = s.get(1..).unwrap_or("");
        let d = body.chars().next();
        if let Some(d @ ('0' | '9')) = d {
            let n = body.chars().take_while(|c| *c == d).count();
            let next_digit = body
                .get(n..)
                .and_then(|r| r.chars().next())
                .is_some_and(|c| c.is_ascii_digit());
            if !next_digit {
                return (
                    Some(Tok::Frac {
                        sep,
                        digits: n.min(9),
                        trim: d == '9',
                    }),
                    1 + n,
                );
            }
        }
    }
    match best {
        Some((len, tok)) => (Some(tok), len),
        None => (None, 0),
    }
}

/// Go's `Duration.String()`: `1h2m3.5s`, `1.5ms`, `0s`.
pub(super) fn duration_string(d: i64) -> String {
    if d == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    if d < 0 {
        out.push('-');
    }
    let u = d.unsigned_abs();
    if u < 1_000_000_000 {
        let (unit, scale) = match u {
            0..1_000 => ("ns", 1u64),
            1_000..1_000_000 => ("µs", 1_000),
            _ => ("ms", 1_000_000),
        };
        write_frac(&mut out, u, scale);
        out.push_str(unit);
        return out;
    }
    let secs = u / 1_000_000_000;
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    if h > 0 {
        let _ = write!(out, "{h}h");
    }
    if h > 0 || m > 0 {
        let _ = write!(out, "{m}m");
    }
    write_frac(
        &mut out,
        s * 1_000_000_000 + u % 1_000_000_000,
        1_000_000_000,
    );
    out.push('s');
    out
}

fn write_frac(out: &mut String, v: u64, scale: u64) {
    let _ = write!(out, "{}", v / scale);
    let frac = v % scale;
    if frac != 0 {
        let width = scale.ilog10() as usize;
        let digits = format!("{frac:0width$}");
        out.push('.');
        out.push_str(digits.trim_end_matches('0'));
    }
}

/// Methods callable on time values (`(x | toTime).Format "2006"`, `(x | toDuration).String`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Method {
    Format,
    String,
    Unix,
    UnixMilli,
    UnixNano,
    Year,
    Month,
    Day,
    YearDay,
    Weekday,
    Hour,
    Minute,
    Second,
    Nanosecond,
    Utc,
    Seconds,
    Minutes,
    Hours,
    Milliseconds,
    Microseconds,
    Nanoseconds,
}

impl Method {
    pub(super) fn lookup(receiver: &Value, name: &str) -> Option<Method> {
        use Method as M;
        match receiver {
            Value::Time(_) => Some(match name {
                "Format" => M::Format,
                "String" => M::String,
                "Unix" => M::Unix,
                "UnixMilli" => M::UnixMilli,
                "UnixNano" => M::UnixNano,
                "Year" => M::Year,
                "Month" => M::Month,
                "Day" => M::Day,
                "YearDay" => M::YearDay,
                "Weekday" => M::Weekday,
                "Hour" => M::Hour,
                "Minute" => M::Minute,
                "Second" => M::Second,
                "Nanosecond" => M::Nanosecond,
                "UTC" => M::Utc,
                _ => return None,
            }),
            Value::Duration(_) => Some(match name {
                "String" => M::String,
                "Seconds" => M::Seconds,
                "Minutes" => M::Minutes,
                "Hours" => M::Hours,
                "Milliseconds" => M::Milliseconds,
                "Microseconds" => M::Microseconds,
                "Nanoseconds" => M::Nanoseconds,
                _ => return None,
            }),
            _ => None,
        }
    }

    /// Number of parameters (all strings: only `Format` takes one).
    pub(super) fn arity(self) -> usize {
        usize::from(self == Method::Format)
    }

    pub(super) fn call(self, receiver: &Value, args: &[Value]) -> Result<Value, String> {
        match receiver {
            Value::Time(t) => t.method(self, args),
            Value::Duration(d) => {
                let d = *d;
                Ok(match self {
                    Method::String => Value::str(&duration_string(d)),
                    Method::Seconds => Value::Float(d as f64 / 1e9),
                    Method::Minutes => Value::Float(d as f64 / 6e10),
                    Method::Hours => Value::Float(d as f64 / 3.6e12),
                    Method::Milliseconds => Value::Int(d / 1_000_000),
                    Method::Microseconds => Value::Int(d / 1_000),
                    Method::Nanoseconds => Value::Int(d),
                    _ => return Err(format!("BUG: {self:?} is not a time.Duration method")),
                })
            }
            _ => Err(format!("BUG: method {self:?} on {}", receiver.type_name())),
        }
    }
}
