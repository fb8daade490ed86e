use super::*;

#[test]
fn go_float_format() {
    let check = |f: f64, want: &str| assert_eq!(format_openmetrics_float(f), want, "{f}");
    check(1.0, "1.0");
    check(0.0, "0.0");
    check(1e3, "1000.0");
    check(0.05, "0.05");
    check(2.5, "2.5");
    check(1e-5, "1e-05");
    check(0.0001, "0.0001");
    check(1e6, "1e+06");
    check(123456.0, "123456.0");
    check(1.5e21, "1.5e+21");
    check(f64::INFINITY, "+Inf");
    check(-1.0, "-1.0");
}
