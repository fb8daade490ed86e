//! Calendar functions on Unix seconds (UTC): day_of_month, day_of_week, day_of_year,
//! days_in_month, hour, minute, month, year.

use crate::calendar::{civil_from_days, days_from_civil};
use crate::error::Result;
use crate::eval::{Ctx, Evaluator};
use crate::value::{Series, Val};
use argus_storage::Labels;
use promql_parser::parser::Expr;

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
        "day_of_year" => (days - days_from_civil(y, 1, 1) + 1) as f64,
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

/// A calendar function of its optional argument (default: the step's time).
pub(crate) fn date_fn(ev: &Evaluator<'_>, name: &str, args: &[&Expr], c: Ctx) -> Result<Val> {
    match args.first() {
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
            v.retain(|s| !s.points.is_empty());
            for s in &mut v {
                s.drop_name = true;
                s.hists.clear();
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
