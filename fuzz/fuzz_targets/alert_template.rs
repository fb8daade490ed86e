#![no_main]
//! Alert templates: arbitrary text is parsed as an alert label/annotation template and, when it
//! parses, executed with sample data and a fake `query`. Properties: no panic, no hang (output,
//! work and recursion are bounded), output within the cap, text without `{{` unchanged.
use argus::template::{AlertTemplate, AlertTemplateData, QuerySample, TemplateQuery};
use std::collections::BTreeMap;

struct Fake;

impl TemplateQuery for Fake {
    fn query(&self, expr: &str) -> Result<Vec<QuerySample>, String> {
        if expr.is_empty() {
            return Err("empty query".into());
        }
        let n = expr.len() % 4;
        Ok((0..n)
            .map(|i| QuerySample {
                labels: BTreeMap::from([("instance".to_string(), format!("host{i}"))]),
                value: i as f64 * 1.5,
            })
            .collect())
    }
}

const VALUES: [f64; 8] = [0.0, 1.0, -0.5, 1234567.0, 1e21, 1e-5, f64::NAN, f64::INFINITY];

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&mode, body)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(body);
    let Ok(t) = AlertTemplate::parse("Fuzz", &text) else {
        return;
    };
    let labels = BTreeMap::from([
        ("__name__".to_string(), "up".to_string()),
        ("instance".to_string(), "a:9100".to_string()),
    ]);
    let ext = BTreeMap::from([("cluster".to_string(), "c1".to_string())]);
    let data = AlertTemplateData {
        labels: &labels,
        external_labels: &ext,
        external_url: if mode & 0x80 != 0 { "http://localhost:9090/p" } else { "" },
        value: VALUES[usize::from(mode) % VALUES.len()],
        eval_time_secs: 1_700_000_000.0,
    };
    if let Ok(out) = t.execute(&data, &Fake) {
        assert!(out.len() <= 1 << 20, "output over the cap: {} bytes", out.len());
        if !text.contains("{{") {
            assert_eq!(out, text, "text without actions must expand to itself");
        }
    }
});
