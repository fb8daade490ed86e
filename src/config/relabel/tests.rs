//! Cases from Prometheus's `model/relabel/relabel_test.go` (TestRelabel, TestRelabelValidate,
//! TestTargetLabelValidity), written as YAML so defaults are exercised too.

use super::*;

fn cfgs(yaml: &str) -> Vec<RelabelConfig> {
    serde_yaml_ng::from_str(yaml).unwrap_or_else(|e| panic!("{yaml}: {e}"))
}

#[test]
fn relabel_table() {
    let check = |input: &[(&str, &str)], yaml: &str, want: Option<&[(&str, &str)]>| {
        let mut l = Labels::from_pairs(input);
        let keep = process(&mut l, &cfgs(yaml));
        match want {
            None => assert!(!keep, "expected drop for {yaml}, got {l}"),
            Some(w) => {
                assert!(keep, "expected keep for {yaml}");
                assert_eq!(l, Labels::from_pairs(w), "\nconfig: {yaml}");
            }
        }
    };
    let abc = [("a", "foo"), ("b", "bar"), ("c", "baz")];
    check(
        &abc,
        r#"[{source_labels: [a], regex: "f(.*)", target_label: d, replacement: "ch${1}-ch${1}"}]"#,
        Some(&[("a", "foo"), ("b", "bar"), ("c", "baz"), ("d", "choo-choo")]),
    );
    check(
        &abc,
        r#"
- {source_labels: [a, b], regex: "f(.*);(.*)r", target_label: a, replacement: "b${1}${2}m"}
- {source_labels: [c, a], regex: "(b).*b(.*)ba(.*)", target_label: d, replacement: "$1$2$2$3"}
"#,
        Some(&[("a", "boobam"), ("b", "bar"), ("c", "baz"), ("d", "boooom")]),
    );
    check(
        &[("a", "foo")],
        r#"
- {source_labels: [a], regex: ".*o.*", action: drop}
- {source_labels: [a], regex: "f(.*)", target_label: d, replacement: "ch$1-ch$1"}
"#,
        None,
    );
    check(
        &[("a", "foo"), ("b", "bar")],
        r#"[{source_labels: [a], regex: ".*o.*", action: drop}]"#,
        None,
    );
    check(
        &[("a", "abc")],
        r#"[{source_labels: [a], regex: ".*(b).*", target_label: d}]"#,
        Some(&[("a", "abc"), ("d", "b")]),
    );
    check(
        &[("a", "foo")],
        r#"[{source_labels: [a], regex: no-match, action: drop}]"#,
        Some(&[("a", "foo")]),
    );
    // Anchoring: "f|o" does not match "foo".
    check(
        &[("a", "foo")],
        r#"[{source_labels: [a], regex: "f|o", action: drop}]"#,
        Some(&[("a", "foo")]),
    );
    check(
        &[("a", "foo")],
        r#"[{source_labels: [a], regex: no-match, action: keep}]"#,
        None,
    );
    check(
        &[("a", "foo")],
        r#"[{source_labels: [a], regex: "f.*", action: keep}]"#,
        Some(&[("a", "foo")]),
    );
    // No replacement without a match.
    check(
        &[("a", "boo")],
        r#"[{source_labels: [a], regex: f, target_label: b, replacement: bar}]"#,
        Some(&[("a", "boo")]),
    );
    check(
        &abc,
        r#"[{source_labels: [c], target_label: d, action: hashmod, modulus: 1000}]"#,
        Some(&[("a", "foo"), ("b", "bar"), ("c", "baz"), ("d", "976")]),
    );
    check(
        &[("a", "foo\nbar")],
        r#"[{source_labels: [a], target_label: b, action: hashmod, modulus: 1000}]"#,
        Some(&[("a", "foo\nbar"), ("b", "734")]),
    );
    check(
        &[("a", "foo"), ("b1", "bar"), ("b2", "baz")],
        r#"[{regex: "(b.*)", replacement: "bar_${1}", action: labelmap}]"#,
        Some(&[
            ("a", "foo"),
            ("b1", "bar"),
            ("b2", "baz"),
            ("bar_b1", "bar"),
            ("bar_b2", "baz"),
        ]),
    );
    check(
        &[
            ("a", "foo"),
            ("__meta_my_bar", "aaa"),
            ("__meta_my_baz", "bbb"),
            ("__meta_other", "ccc"),
        ],
        r#"[{regex: "__meta_(my.*)", replacement: "${1}", action: labelmap}]"#,
        Some(&[
            ("a", "foo"),
            ("__meta_my_bar", "aaa"),
            ("__meta_my_baz", "bbb"),
            ("__meta_other", "ccc"),
            ("my_bar", "aaa"),
            ("my_baz", "bbb"),
        ]),
    );
    check(
        &[("a", "some-name-value")],
        r#"[{source_labels: [a], regex: "some-([^-]+)-([^,]+)", replacement: "${2}", target_label: "${1}"}]"#,
        Some(&[("a", "some-name-value"), ("name", "value")]),
    );
    // Replacement expanding to "" deletes the (here absent) target.
    check(
        &[("a", "some-name-value")],
        r#"[{source_labels: [a], regex: "some-([^-]+)-([^,]+)", replacement: "${3}", target_label: "${1}"}]"#,
        Some(&[("a", "some-name-value")]),
    );
    // Invalid expanded target labels are skipped.
    check(
        &[("a", "some-name-0")],
        r#"
- {source_labels: [a], regex: "some-([^-]+)-([^,]+)", replacement: "${1}", target_label: "${3}"}
- {source_labels: [a], regex: "some-([^-]+)-([^,]+)", replacement: "${1}", target_label: "${3}"}
- {source_labels: [a], regex: "some-([^-]+)(-[^,]+)", replacement: "${1}", target_label: "${3}"}
"#,
        Some(&[("a", "some-name-0")]),
    );
    check(
        &[("__meta_sd_tags", "path:/secret,job:some-job,label:foo=bar")],
        r#"
- {source_labels: [__meta_sd_tags], regex: "(?:.+,|^)path:(/[^,]+).*", replacement: "${1}", target_label: __metrics_path__}
- {source_labels: [__meta_sd_tags], regex: "(?:.+,|^)job:([^,]+).*", replacement: "${1}", target_label: job}
- {source_labels: [__meta_sd_tags], regex: "(?:.+,|^)label:([^=]+)=([^,]+).*", replacement: "${2}", target_label: "${1}"}
"#,
        Some(&[
            ("__meta_sd_tags", "path:/secret,job:some-job,label:foo=bar"),
            ("__metrics_path__", "/secret"),
            ("job", "some-job"),
            ("foo", "bar"),
        ]),
    );
    check(
        &[
            ("__meta_kubernetes_pod_container_port_name", "foo"),
            ("__meta_kubernetes_pod_annotation_XXX_metrics_port", "9091"),
        ],
        r#"
- {regex: "^__meta_kubernetes_pod_container_port_name$", action: labeldrop}
- {source_labels: [__meta_kubernetes_pod_annotation_XXX_metrics_port], regex: "(.+)", replacement: metrics, target_label: __meta_kubernetes_pod_container_port_name}
- {source_labels: [__meta_kubernetes_pod_container_port_name], regex: "^metrics$", action: keep}
"#,
        Some(&[
            ("__meta_kubernetes_pod_annotation_XXX_metrics_port", "9091"),
            ("__meta_kubernetes_pod_container_port_name", "metrics"),
        ]),
    );
    let ab = [("a", "foo"), ("b1", "bar"), ("b2", "baz")];
    check(
        &ab,
        r#"[{regex: "(b.*)", action: labelkeep}]"#,
        Some(&[("b1", "bar"), ("b2", "baz")]),
    );
    check(
        &ab,
        r#"[{regex: "(b.*)", action: labeldrop}]"#,
        Some(&[("a", "foo")]),
    );
    check(
        &[("foo", "bAr123Foo")],
        r#"
- {source_labels: [foo], action: uppercase, target_label: foo_uppercase}
- {source_labels: [foo], action: lowercase, target_label: foo_lowercase}
"#,
        Some(&[
            ("foo", "bAr123Foo"),
            ("foo_lowercase", "bar123foo"),
            ("foo_uppercase", "BAR123FOO"),
        ]),
    );
    let ports = [
        ("__tmp_port", "1234"),
        ("__port1", "1234"),
        ("__port2", "5678"),
    ];
    check(
        &ports,
        r#"[{source_labels: [__tmp_port], action: keepequal, target_label: __port1}]"#,
        Some(&ports),
    );
    check(
        &ports,
        r#"[{source_labels: [__tmp_port], action: dropequal, target_label: __port1}]"#,
        None,
    );
    check(
        &ports,
        r#"[{source_labels: [__tmp_port], action: dropequal, target_label: __port2}]"#,
        Some(&ports),
    );
    check(
        &ports,
        r#"[{source_labels: [__tmp_port], action: keepequal, target_label: __port2}]"#,
        None,
    );
    // Dot matches newline ((?s) anchoring, Prometheus 3).
    check(
        &[("a", "x\ny")],
        r#"[{source_labels: [a], regex: "x.y", action: keep}]"#,
        Some(&[("a", "x\ny")]),
    );
    // Empty source value with the default regex sets the literal replacement.
    check(
        &[("a", "1")],
        r#"[{target_label: env, replacement: prod}]"#,
        Some(&[("a", "1"), ("env", "prod")]),
    );
    // Action names are case-insensitive.
    check(
        &[("a", "1")],
        r#"[{source_labels: [a], regex: "1", action: DROP}]"#,
        None,
    );
}

#[test]
fn validate_messages() {
    let check = |yaml: &str, want: &str| {
        let r: Result<Vec<RelabelConfig>, _> = serde_yaml_ng::from_str(yaml);
        match r {
            Ok(_) if want.is_empty() => {}
            Ok(_) => panic!("{yaml}: expected error containing {want:?}"),
            Err(e) => assert!(
                !want.is_empty() && e.to_string().contains(want),
                "{yaml}: want {want:?}, got {e}"
            ),
        }
    };
    check("[{action: replace}]", "requires 'target_label' value");
    check("[{action: lowercase}]", "requires 'target_label' value");
    check(
        r#"[{action: lowercase, target_label: "${3}"}]"#,
        r#""${3}" is invalid 'target_label'"#,
    );
    check(
        r#"[{source_labels: [a], regex: "some-([^-]+)-([^,]+)", replacement: "${1}", target_label: "${3}"}]"#,
        "",
    );
    check(
        r#"[{source_labels: [a], regex: "x", target_label: "0${3}"}]"#,
        r#""0${3}" is invalid 'target_label'"#,
    );
    check(
        r#"[{source_labels: [a], regex: "x", target_label: "-${3}"}]"#,
        r#""-${3}" is invalid 'target_label' for replace action"#,
    );
    check(
        "[{action: hashmod, target_label: a}]",
        "requires non-zero modulus",
    );
    check(
        "[{action: labeldrop, regex: a, source_labels: [b]}]",
        "requires only 'regex'",
    );
    check(
        "[{action: keepequal, target_label: a, regex: b}]",
        "requires only 'source_labels'",
    );
    check("[{action: frobnicate}]", "unknown relabel action");
    check("[{action: keep, regex: '('}]", "invalid relabel regex");
    check("[{action: keep, bogus: 1}]", "unknown field");
}

#[test]
fn target_template_validity() {
    let check = |s: &str, valid: bool| assert_eq!(is_valid_target_template(s), valid, "{s:?}");
    for (s, v) in [
        ("-label", false),
        ("label", true),
        ("label${1}", true),
        ("${1}label", true),
        ("${1}", true),
        ("${", false),
        ("$", false),
        ("${}", false),
        ("foo${", false),
        ("$1", true),
        ("asd$2asd", true),
        ("-foo${1}bar-", false),
        ("_${1}_", true),
        ("foo${bar}foo", true),
    ] {
        check(s, v);
    }
}

#[test]
fn serialize_roundtrip() {
    let c = cfgs(
        r#"[{source_labels: [a, b], separator: "-", regex: "x(.*)", target_label: t, replacement: "$1!"}]"#,
    );
    let back: Vec<RelabelConfig> =
        serde_yaml_ng::from_str(&serde_yaml_ng::to_string(&c).unwrap()).unwrap();
    assert_eq!(c, back);
}
