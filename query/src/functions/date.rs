//! Calendar functions on Unix seconds (UTC): day_of_month, day_of_week, day_of_year,
//! days_in_month, hour, minute, month, year.

use crate::error::Result;
use crate::eval::{Ctx, Evaluator};
use crate::value::{Series, Val};
use argus_storage::Labels;
use promql_parser::parser::Expr;

/// Civil date (year, month 1-12, day 1-31) from days since 1970-01-01.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn apply(name: &str, secs: f64) -> f64 {
    let s = secs as i64;
    let days = s.div_euclid(86_400);
    let sod = s.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    match name {
        "day_of_month" => d as f64,
        "day_of_week" => (days + 4).rem_euclid(7) as f64,
        "day_of_year" => {
            let (jan1, _, _) = (y, 1, 1);
            let start = days_from_civil(jan1, 1, 1);
            (days - start + 1) as f64
        }
        "days_in_month" => match m {
            2 if is_leap(y) => 29.0,
            2 => 28.0,
            4 | 6 | 9 | 11 => 30.0,
            _ => 31.0,
        },
        "hour" => (sod / 3600) as f64,
        "minute" => ((sod % 3600) / 60) as f64,
        "month" => m as f64,
        "year" => y as f64,
        _ => f64::NAN,
    }
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

pub(crate) fn date_fn(ev: &Evaluator<'_>, name: &str, arg: Option<&Expr>, c: Ctx) -> Result<Val> {
    match arg {
        None => {
            let mut s = Series::new(Labels::empty(), false);
            s.points = (0..c.n())
                .map(|i| {
                    let t = c.t(i);
                    (t, apply(name, t.div_euclid(1000) as f64))
                })
                .collect();
            Ok(Val::Vector(vec![s]))
        }
        Some(a) => {
            let mut v = ev.eval_vector(a, c)?;
            for s in &mut v {
                s.drop_name = true;
                for p in &mut s.points {
                    p.1 = if p.1.is_finite() {
                        apply(name, p.1)
                    } else {
                        p.1
                    };
                }
            }
            Ok(Val::Vector(v))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calendar() {
        // 2024-02-29T13:45:00Z
        let t = 1_709_214_300.0;
        assert_eq!(apply("year", t), 2024.0);
        assert_eq!(apply("month", t), 2.0);
        assert_eq!(apply("day_of_month", t), 29.0);
        assert_eq!(apply("days_in_month", t), 29.0);
        assert_eq!(apply("day_of_week", t), 4.0);
        assert_eq!(apply("day_of_year", t), 60.0);
        assert_eq!(apply("hour", t), 13.0);
        assert_eq!(apply("minute", t), 45.0);
        assert_eq!(apply("day_of_week", 0.0), 4.0);
    }
}
