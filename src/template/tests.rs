//! Table tests: the input → output pairs of FORMAT.md C.9 (observed with promtool 2.42 and
//! Prometheus's `template_test.go`), parse and execution error texts, Go built-ins.

use super::*;

/// Answers `query` from a fixed table; any other expression fails.
struct FakeQuery(Vec<(&'static str, Vec<QuerySample>)>);

impl TemplateQuery for FakeQuery {
    fn query(&self, expr: &str) -> Result<Vec<QuerySample>, String> {
        self.0
            .iter()
            .find(|(e, _)| *e == expr)
            .map(|(_, r)| r.clone())
            .ok_or_else(|| format!("unexpected query {expr:?}"))
    }
}

fn sample(labels: &[(&str, &str)], value: f64) -> QuerySample {
    QuerySample {
        labels: labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        value,
    }
}

fn fake_query() -> FakeQuery {
    FakeQuery(vec![
        ("1.5", vec![sample(&[], 1.5)]),
        (
            "metric",
            vec![sample(&[("__name__", "metric"), ("instance", "a")], 11.0)],
        ),
        ("strvalue", vec![sample(&[("__value__", "a")], 0.0)]),
        (
            "unsorted",
            vec![
                sample(&[("instance", "b")], 21.0),
                sample(&[("instance", "a")], 11.0),
            ],
        ),
        ("empty", vec![]),
    ])
}

/// Expands `text` for alert `V` with sample `metric{instance="a",job="j"}` = `value`, external
/// label `cluster="c1"`, external URL `http://testhost:9090/path/prefix`, time 1353755652 s.
fn expand_with(text: &str, value: f64, url: &str) -> Result<String, String> {
    let labels: BTreeMap<String, String> =
        [("__name__", "metric"), ("instance", "a"), ("job", "j")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
    let ext = BTreeMap::from([("cluster".to_string(), "c1".to_string())]);
    let data = AlertTemplateData {
        labels: &labels,
        external_labels: &ext,
        external_url: url,
        value,
        eval_time_secs: 1353755652.0,
    };
    expand_alert_template("V", text, &data, &fake_query()).map_err(|e| e.to_string())
}

fn expand(text: &str, value: f64) -> Result<String, String> {
    expand_with(text, value, "http://testhost:9090/path/prefix")
}

#[track_caller]
fn check_ok(text: &str, want: &str) {
    match expand(text, 1.0) {
        Ok(got) => assert_eq!(got, want, "template {text:?}"),
        Err(e) => panic!("template {text:?}\nexpected: {want:?}\ngot error: {e}"),
    }
}

#[track_caller]
fn check_err(text: &str, want: &str) {
    match expand(text, 1.0) {
        Ok(got) => panic!("template {text:?}\nexpected error: {want}\ngot output: {got:?}"),
        Err(e) => assert_eq!(e, want, "template {text:?}"),
    }
}

#[test]
fn value_humanize_printf_table() {
    let check = |v: f64, value: &str, human: &str, printf: &str| {
        let got = expand(
            r#"{{ $value }}|{{ humanize $value }}|{{ printf "%.2f" $value }}"#,
            v,
        );
        assert_eq!(
            got.as_deref(),
            Ok(format!("{value}|{human}|{printf}").as_str()),
            "value {v}"
        );
    };
    check(3.0, "3", "3", "3.00");
    check(-0.5, "-0.5", "-500m", "-0.50");
    check(0.0001, "0.0001", "100u", "0.00");
    check(0.00001, "1e-05", "10u", "0.00");
    check(100000.0, "100000", "100k", "100000.00");
    check(123456.5, "123456.5", "123.5k", "123456.50");
    check(1234567.0, "1.234567e+06", "1.235M", "1234567.00");
    check(1e21, "1e+21", "1Z", "1000000000000000000000.00");
    check(f64::NAN, "NaN", "NaN", "NaN");
    check(f64::INFINITY, "+Inf", "+Inf", "+Inf");
}

#[test]
fn prometheus_function_table() {
    let check = check_ok;
    check(r#"{{ query "1.5" | first | value }}"#, "1.5");
    check(r#"{{ query "metric" | first | value }}"#, "11");
    check(r#"{{ query "metric" | first | label "instance" }}"#, "a");
    check(r#"{{ query "metric" | first | label "foo" }}"#, "");
    check(r#"{{ query "strvalue" | first | strvalue }}"#, "a");
    check(
        r#"{{ range query "unsorted" | sortByLabel "instance" }}{{.Labels.instance}}:{{.Value}}: {{ end }}"#,
        "a:11: b:21: ",
    );
    check(
        r#"{{ range query "unsorted" }}{{.Labels.instance}}:{{.Value}}: {{ end }}"#,
        "b:21: a:11: ",
    );
    check(
        "{{ humanize 0 }}|{{ humanize 1 }}|{{ humanize 1234567 }}|{{ humanize .12 }}",
        "0|1|1.235M|120m",
    );
    check("{{ humanize 9223372036854775807 }}", "9.223E");
    check(
        "{{ humanize1024 1048576 }}|{{ humanize1024 .12 }}|{{ humanize1024 1234567 }}",
        "1Mi|0.12|1.177Mi",
    );
    check(
        "{{ humanizeDuration 0 }}|{{ humanizeDuration 60 }}|{{ humanizeDuration 3600 }}|{{ humanizeDuration 90000 }}",
        "0s|1m 0s|1h 0m 0s|1d 1h 0m 0s",
    );
    check(
        "{{ humanizeDuration -183845 }}|{{ humanizeDuration 899.99 }}",
        "-2d 3h 4m 5s|14m 59s",
    );
    check(
        "{{ humanizeDuration .1 }}|{{ humanizeDuration .0001 }}|{{ humanizeDuration 1.2345 }}|{{ humanizeDuration 12.345 }}",
        "100ms|100us|1.234s|12.35s",
    );
    check(
        "{{ humanizePercentage -0.22222 }}|{{ humanizePercentage 0.1234567 }}|{{ humanizePercentage 1.23456 }}",
        "-22.22%|12.35%|123.5%",
    );
    check(
        "{{ humanizeTimestamp 1435065584.128 }}|{{ humanizeTimestamp 0 }}",
        "2015-06-23 13:19:44.128 +0000 UTC|1970-01-01 00:00:00 +0000 UTC",
    );
    check(r#"{{ (1435065584.128 | toTime).Format "2006" }}"#, "2015");
    check(
        "{{ (1800 | toDuration).String }}|{{ 1800 | toDuration }}|{{ 0 | toTime }}",
        "30m0s|30m0s|1970-01-01 00:00:00 +0000 UTC",
    );
    check("{{ now }}", "1.353755652e+09");
    check(
        r#"{{ printf "%0.2f" (parseDuration "1h2m10ms") }}|{{ printf "%0.2f" (parseDuration "-1h2m10ms") }}"#,
        "3720.01|-3720.01",
    );
    check(r#"{{ title "o'neil aa-bb" }}"#, "O'Neil Aa-Bb");
    check(
        r#"{{ title "aa bb CC" }}|{{ toUpper "aa bb CC" }}|{{ toLower "aA bB CC" }}"#,
        "Aa Bb CC|AA BB CC|aa bb cc",
    );
    check(
        r#"{{ match "a+" "aa" }}|{{ match "a+" "b" }}|{{ reReplaceAll "(a)b" "x$1" "ab" }}"#,
        "true|false|xa",
    );
    check(
        r#"{{ stripPort "foo.example.com:12345" }}|{{ stripPort "[2001:0DB8::1]:12345" }}|{{ stripPort "foo" }}"#,
        "foo.example.com|2001:0DB8::1|foo",
    );
    check(
        r#"{{ stripDomain "foo.example.com:12345" }}|{{ stripDomain "192.0.2.1:12345" }}|{{ stripDomain "foo.example.com" }}"#,
        "foo:12345|192.0.2.1:12345|foo",
    );
    check(
        r#"{{ graphLink "up" }}|{{ tableLink "up" }}"#,
        "/graph?g0.expr=up&g0.tab=0|/graph?g0.expr=up&g0.tab=1",
    );
    check(r#"{{ urlQueryEscape "a b&c" }}"#, "a+b%26c");
    check(
        r#"{{define "x"}}{{.arg0}} {{.arg1}}{{end}}{{template "x" (args 1 "2")}}"#,
        "1 2",
    );
    check(r#"{{ "<b>" | safeHtml }}|{{ "<b>" }}"#, "<b>|<b>");
    check(
        "{{ externalURL }}|{{ pathPrefix }}|{{ $externalURL }}",
        "http://testhost:9090/path/prefix|/path/prefix|http://testhost:9090/path/prefix",
    );
}

#[test]
fn prometheus_function_errors() {
    check_err(
        r#"{{ query "empty" | first }}"#,
        r#"error executing template __alert_V: template: __alert_V:1:131: executing "__alert_V" at <first>: error calling first: first() called on vector with no elements"#,
    );
    check_err(
        r#"{{ humanize "one" }}"#,
        r#"error executing template __alert_V: template: __alert_V:1:115: executing "__alert_V" at <humanize "one">: error calling humanize: strconv.ParseFloat: parsing "one": invalid syntax"#,
    );
    check_err(
        "{{ humanizeTimestamp 1e20 }}",
        r#"error executing template __alert_V: template: __alert_V:1:115: executing "__alert_V" at <humanizeTimestamp 1e20>: error calling humanizeTimestamp: 1e+20 cannot be represented as a nanoseconds timestamp since it overflows int64"#,
    );
    // Without an external URL (promtool) these two fail like a nil pointer in Go.
    let got = expand_with("{{ pathPrefix }}", 1.0, "");
    assert_eq!(
        got,
        Err(r#"error executing template __alert_V: template: __alert_V:1:115: executing "__alert_V" at <pathPrefix>: error calling pathPrefix: runtime error: invalid memory address or nil pointer dereference"#.to_string())
    );
    assert_eq!(
        expand_with("{{ $externalURL }}|", 1.0, "").as_deref(),
        Ok("|")
    );
}

#[test]
fn parse_errors_have_go_texts() {
    let check = |text: &str, want: &str| {
        let got = check_alert_template("InstanceDown", text).map_err(|e| e.to_string());
        assert_eq!(got, Err(want.to_string()), "template {text:?}");
    };
    check(
        "{{ $label.instance }}",
        r#"template: __alert_InstanceDown:1: undefined variable "$label""#,
    );
    check(
        "{{$this_is_wrong}}",
        r#"template: __alert_InstanceDown:1: undefined variable "$this_is_wrong""#,
    );
    check(
        "{{$labels.quantile * 100}}",
        r#"template: __alert_InstanceDown:1: unexpected "*" in operand"#,
    );
    check(
        "{{ tmpl \"x\" . }}",
        r#"template: __alert_InstanceDown:1: function "tmpl" not defined"#,
    );
    check(
        "a\n{{ if }}",
        "template: __alert_InstanceDown:2: missing value for if",
    );
    check(
        "{{ if 1 }}",
        "template: __alert_InstanceDown:1: unexpected EOF",
    );
    check(
        "{{ end }}",
        "template: __alert_InstanceDown:1: unexpected {{end}}",
    );
    check(
        "{{ 1 | 2 }}",
        "template: __alert_InstanceDown:1: non executable command in pipeline stage 2",
    );
    check(
        "{{ \"abc }}",
        "template: __alert_InstanceDown:1: unterminated quoted string",
    );
    check(
        "{{ break }}",
        "template: __alert_InstanceDown:1: {{break}} outside {{range}}",
    );
    check(
        "{{ (1 }}",
        "template: __alert_InstanceDown:1: unclosed left paren",
    );
    check(
        "{{ 1) }}",
        r#"template: __alert_InstanceDown:1: unexpected ")" in command"#,
    );
    check(
        "{{ .a.b.c | x }}",
        r#"template: __alert_InstanceDown:1: function "x" not defined"#,
    );
    check(
        "{{define \"x\"}}{{ $labels }}{{end}}",
        r#"template: __alert_InstanceDown:1: undefined variable "$labels""#,
    );
    check(
        "{{ 1.2.3 }}",
        r#"template: __alert_InstanceDown:1: unexpected ".3" in operand"#,
    );
    check(
        "{{/* x */}}{{ /* y */}}",
        r#"template: __alert_InstanceDown:1: unexpected "/" in command"#,
    );
    // Valid ones.
    for ok in [
        "Instance {{ $labels.instance }} down",
        "{{ range $i, $v := query \"up\" }}{{ $i }}{{ $v.Value }}{{ break }}{{ end }}",
        "{{- if eq $value 1.0 -}} one {{- else if gt $value 1.0 }} more {{ else }} less {{ end -}}",
        "{{ with $x := $labels.job }}{{ $x }}{{ else with $labels.instance }}{{ . }}{{ end }}",
        "{{/* comment */}}{{ block \"b\" . }}{{ .Value }}{{ end }}",
        "no actions at all",
    ] {
        assert_eq!(check_alert_template("X", ok), Ok(()), "template {ok:?}");
    }
}

#[test]
fn data_access_and_missing_keys() {
    check_ok(
        "{{ $labels.instance }}/{{ .Labels.job }}/{{ $labels.nonexistent }}/{{ index $labels \"job\" }}",
        "a/j//j",
    );
    check_ok(
        "{{ $externalLabels.cluster }}|{{ .ExternalLabels.missing }}|{{ $value }}|{{ .Value }}",
        "c1||1|1",
    );
    check_ok(
        "{{ . }}",
        "{map[__name__:metric instance:a job:j] map[cluster:c1] http://testhost:9090/path/prefix 1}",
    );
    check_ok(
        "{{ (args 1).arg5 }}|{{ index (args 1) \"x\" }}|{{ args 1 \"2\" }}",
        "<no value>|<no value>|map[arg0:1 arg1:2]",
    );
    check_ok(
        "{{ query \"metric\" | first }}",
        "{map[__name__:metric instance:a] 11}",
    );
    check_err(
        "{{ $value }} {{ humanize $value }} {{ .Foo }}",
        r#"error executing template __alert_V: template: __alert_V:1:150: executing "__alert_V" at <.Foo>: can't evaluate field Foo in type struct { Labels map[string]string; ExternalLabels map[string]string; ExternalURL string; Value float64 }"#,
    );
    check_err(
        "{{ .Labels.instance.x }}",
        r#"error executing template __alert_V: template: __alert_V:1:122: executing "__alert_V" at <.Labels.instance.x>: can't evaluate field x in type string"#,
    );
}

#[test]
fn go_builtins() {
    check_ok(
        r#"{{ print 1 2 "a" 3 4 }}|{{ println 1 "a" }}|"#,
        "1 2a3 4|1 a\n|",
    );
    check_ok(
        r#"{{ printf "%d|%v %v" 1.5 1 }}"#,
        "%!d(float64=1.5)|1 %!v(MISSING)",
    );
    check_ok(
        r#"{{ printf "%s" 3 }}{{ printf "%T %T" $labels $value }}"#,
        "%!s(int=3)map[string]string float64",
    );
    check_ok(
        r#"{{ printf "%5.1f|%-4d|%04d|%x|%q|%e|%g" 3.14159 7 -7 255 "a\"b" 123456.0 0.000012 }}"#,
        "  3.1|7   |-007|ff|\"a\\\"b\"|1.234560e+05|1.2e-05",
    );
    check_ok(
        r#"{{ html "<a&\"x'>" }}|{{ urlquery "a b" }}"#,
        "&lt;a&amp;&#34;x&#39;&gt;|a+b",
    );
    check_ok(
        r#"{{ js "<a&\"x'=>\\" }}"#,
        r#"\u003Ca\u0026\"x\'\u003D\u003E\\"#,
    );
    check_ok(
        r#"{{ len $labels }} {{ index $labels "job" }} {{ slice "abcdef" 1 3 }} {{ index "abc" 1 }}"#,
        "3 j bc 98",
    );
    check_ok(
        "{{ and 1 0 2 }}|{{ or 0 \"\" 3 }}|{{ not 0 }}|{{ and 1 2 }}",
        "0|3|true|2",
    );
    check_ok(
        "{{ eq 1 2 1 }}|{{ ne \"a\" \"b\" }}|{{ lt 1 2 }}|{{ le 2 2 }}|{{ gt 1.5 2.5 }}|{{ ge \"b\" \"a\" }}",
        "true|true|true|true|false|true",
    );
    check_ok(
        "{{ if and (gt $value 0.5) (lt $value 2.0) }}in{{ else }}out{{ end }}",
        "in",
    );
    check_ok(
        "{{ range $i, $e := query \"unsorted\" }}{{ if $i }}, {{ end }}{{ $i }}={{ $e.Value }}{{ end }}",
        "0=21, 1=11",
    );
    check_ok(
        "{{ range $k, $v := $labels }}{{ $k }}={{ $v }};{{ end }}",
        "__name__=metric;instance=a;job=j;",
    );
    check_ok(
        "{{ range query \"empty\" }}x{{ else }}none{{ end }}",
        "none",
    );
    check_ok(
        "{{ range $i := 5 }}{{ if eq $i 3 }}{{ break }}{{ end }}{{ if eq $i 1 }}{{ continue }}{{ end }}{{ $i }}{{ end }}",
        "02",
    );
    check_ok(
        "{{ $x := 1 }}{{ if true }}{{ $x = 2 }}{{ end }}{{ $x }}",
        "2",
    );
    check_ok("{{- \"a\" }}  \n  {{- \"b\" -}}  \n  {{ \"c\" }}", "abc");
    check_ok(
        "{{ with $labels.job }}job={{ . }}{{ end }}{{ with $labels.nope }}x{{ else }}-{{ end }}",
        "job=j-",
    );
    check_ok("{{ \"<b>&\" }}", "<b>&");
    check_ok(
        "{{ 'a' }}|{{ 0x10 }}|{{ 1e3 }}|{{ -2 }}|{{ true }}|{{ `raw` }}",
        "97|16|1000|-2|true|raw",
    );
    check_err(
        "{{ eq 1 1.0 }}",
        r#"error executing template __alert_V: template: __alert_V:1:115: executing "__alert_V" at <eq 1 1.0>: error calling eq: incompatible types for comparison"#,
    );
    check_err(
        "{{ humanize }}",
        r#"error executing template __alert_V: template: __alert_V:1:115: executing "__alert_V" at <humanize>: wrong number of args for humanize: want 1 got 0"#,
    );
    check_err(
        "{{ title 1 }}",
        r#"error executing template __alert_V: template: __alert_V:1:121: executing "__alert_V" at <1>: expected string; found 1"#,
    );
    check_err(
        "{{ template \"nope\" }}",
        r#"error executing template __alert_V: template: __alert_V:1:124: executing "__alert_V" at <{{template "nope"}}>: template "nope" not defined"#,
    );
}

/// Pairs observed with promtool 2.42 (errors point at the last node Go's executor visited).
#[test]
fn promtool_observed_edge_cases() {
    check_ok(
        r#"{{ printf "%[2]d %[1]d" 1 2 }}|{{ printf "%x" 1.5 }}|{{ printf "%+q" "é" }}"#,
        r#"2 1|0x1.8p+00|"\u00e9""#,
    );
    check_ok(
        r#"{{ printf "%c|%q|%U|%#U" 0x1F600 0x1F600 0x1F600 0x1F600 }}"#,
        "😀|'😀'|U+1F600|U+1F600 '😀'",
    );
    check_ok(
        r#"{{ printf "%s|%d" nil $labels }}"#,
        "%!s(<nil>)|map[%!d(string=__name__):%!d(string=metric) %!d(string=instance):%!d(string=a) %!d(string=job):%!d(string=j)]",
    );
    check_ok(
        r#"{{ printf "%08s|%-08d|%+08d" "ab" 5 5 }}"#,
        "000000ab|5       |+0000005",
    );
    check_ok(
        r#"{{ printf "%*d|%-*d|%.*f" 5 1 5 1 2 3.14159 }}"#,
        "    1|1    |3.14",
    );
    check_ok(
        r#"{{ toUpper "straße" }}|{{ js "a\u2028b" }}|{{ not nil }}|{{ 0x1p-2 }}"#,
        r#"STRAßE|a\u2028b|true|0.25"#,
    );
    check_ok(r#"{{ printf "%U" -1 }}"#, "U+FFFFFFFFFFFFFFFF");
    check_ok(
        "{{ humanizeDuration 1e20 }}",
        "-106751991167300d -15h -30m -8s",
    );
    let e = |at: &str| format!("error executing template __alert_V: template: __alert_V:1:{at}");
    check_err(
        "{{ index nil 1 }}",
        &e(
            r#"115: executing "__alert_V" at <index nil 1>: error calling index: index of untyped nil"#,
        ),
    );
    check_err(
        "{{ range $value }}x{{ end }}",
        &e(r#"121: executing "__alert_V" at <$value>: range can't iterate over 1"#),
    );
    check_err(
        r#"{{ range (query "metric" | first) }}x{{ end }}"#,
        &e(
            r#"139: executing "__alert_V" at <first>: range can't iterate over {map[__name__:metric instance:a] 11}"#,
        ),
    );
    check_err(
        "{{ (1 | toTime).Nope }}",
        &e(
            r#"120: executing "__alert_V" at <toTime>: can't evaluate field Nope in type *time.Time"#,
        ),
    );
    check_err(
        "{{ (1).x }}",
        &e(r#"116: executing "__alert_V" at <1>: can't evaluate field x in type int"#),
    );
    check_err(
        r#"{{ title (safeHtml "x") }}"#,
        &e(
            r#"131: executing "__alert_V" at <"x">: wrong type for value; expected string; got template.HTML"#,
        ),
    );
    check_err(
        r#"{{ match "(" "x" }}"#,
        &e(
            r#"115: executing "__alert_V" at <match "(" "x">: error calling match: error parsing regexp: missing closing ): `(`"#,
        ),
    );
    check_err(
        r#"{{ reReplaceAll "(" "x" "y" }}"#,
        &e(
            r#"115: executing "__alert_V" at <reReplaceAll "(" "x" "y">: error calling reReplaceAll: regexp: Compile(`(`): error parsing regexp: missing closing ): `(`"#,
        ),
    );
    check_err(
        r#"{{ parseDuration "-" }}"#,
        &e(
            r#"115: executing "__alert_V" at <parseDuration "-">: error calling parseDuration: not a valid duration string: "-""#,
        ),
    );
    check_err(
        r#"{{ humanize (index "a" 0) }}"#,
        &e(
            r#"115: executing "__alert_V" at <humanize (index "a" 0)>: error calling humanize: can't convert uint8 to float"#,
        ),
    );
    let parse = |t: &str| check_alert_template("V", t).map_err(|e| e.to_string());
    assert_eq!(
        parse("{{ 1e400 }}"),
        Err(r#"template: __alert_V:1: illegal number syntax: "1e400""#.to_string())
    );
}

/// The error of an expansion that must fail; an unexpected output is shown shortened.
#[track_caller]
fn expect_err(r: Result<String, String>) -> String {
    match r {
        Ok(out) => panic!(
            "expected an error, got {} bytes: {:?}…",
            out.len(),
            out.get(..100).unwrap_or(&out)
        ),
        Err(e) => e,
    }
}

#[test]
fn bounds_stop_runaway_templates() {
    let recursive = r#"{{ define "r" }}{{ template "r" . }}{{ end }}{{ template "r" . }}"#;
    let err = expand(recursive, 1.0).expect_err("unbounded recursion");
    assert!(
        err.contains("exceeded maximum template depth (100)"),
        "{err}"
    );
    let doubling = (0..40).map(|i| format!("{{{{define \"t{i}\"}}}}{{{{template \"t{}\"}}}}{{{{template \"t{}\"}}}}{{{{end}}}}", i + 1, i + 1)).collect::<String>()
        + "{{define \"t40\"}}x{{end}}{{template \"t0\"}}";
    let err = expand(&doubling, 1.0).expect_err("exponential work");
    assert!(err.contains("exceeded"), "{err}");
    let err = expand("{{ range 100000000 }}{{ end }}", 1.0).expect_err("long range");
    assert!(err.contains("exceeded 1000000 steps"), "{err}");
    let err = expand(r#"{{ range 2000 }}{{ printf "%1000d" 1 }}{{ end }}"#, 1.0)
        .expect_err("huge output");
    assert!(
        err.contains("template output exceeds 1048576 bytes"),
        "{err}"
    );
    let doubling_string =
        r#"{{ $x := "ab" }}{{ range 100 }}{{ $x = printf "%s%s" $x $x }}{{ end }}"#;
    let err = expect_err(expand(doubling_string, 1.0));
    assert!(
        err.contains("error calling printf: result exceeds 1048576 bytes"),
        "{err}"
    );
    let wide = r#"{{ printf "%1000000d%1000000d%1000000d" 1 2 3 }}"#;
    let err = expect_err(expand(wide, 1.0));
    assert!(err.contains("result exceeds 1048576 bytes"), "{err}");
    let regex_blowup = r#"{{ $x := printf "%100000d" 1 }}{{ reReplaceAll "" $x $x }}"#;
    let err = expect_err(expand(regex_blowup, 1.0));
    assert!(
        err.contains("error calling reReplaceAll: result exceeds 1048576 bytes"),
        "{err}"
    );
    let busy = r#"{{ range 100000 }}{{ $y := printf "%1000d" 1 }}{{ end }}"#;
    let err = expect_err(expand(busy, 1.0));
    assert!(err.contains("produced more than 67108864 bytes"), "{err}");
    let deep = "{{ if 1 }}".repeat(200) + &"{{ end }}".repeat(200);
    let err = check_alert_template("X", &deep).expect_err("deep nesting");
    assert!(
        err.to_string().contains("max nesting depth exceeded"),
        "{err}"
    );
    let parens = "{{ ".to_string() + &"(".repeat(5000) + "1" + &")".repeat(5000) + " }}";
    let err = check_alert_template("X", &parens).expect_err("deep parens");
    assert!(err.to_string().contains("depth exceeded"), "{err}");
}

#[test]
fn float_formatters() {
    let check = |v: f64, g: &str, e: &str| {
        assert_eq!(format_go_float(v), g, "%v of {v}");
        assert_eq!(format_go_float_e(v), e, "%e of {v}");
    };
    check(1.0, "1", "1e+00");
    check(1234567.0, "1.234567e+06", "1.234567e+06");
    check(0.00001, "1e-05", "1e-05");
    check(-0.5, "-0.5", "-5e-01");
    check(f64::NAN, "NaN", "NaN");
    check(f64::INFINITY, "+Inf", "+Inf");
    check(f64::NEG_INFINITY, "-Inf", "-Inf");
    assert_eq!(humanize(1234567.0), "1.235M");
    assert_eq!(humanize_duration(3600.0), "1h 0m 0s");
}

#[test]
fn parsed_template_is_reusable_and_shareable() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<AlertTemplate>();
    let t = AlertTemplate::parse("V", "{{ $labels.instance }}={{ $value }}").expect("parses");
    let labels = BTreeMap::from([("instance".to_string(), "x".to_string())]);
    let ext = BTreeMap::new();
    for v in [1.0, 2.5] {
        let data = AlertTemplateData {
            labels: &labels,
            external_labels: &ext,
            external_url: "",
            value: v,
            eval_time_secs: 0.0,
        };
        assert_eq!(
            t.execute(&data, &fake_query()).as_deref(),
            Ok(format!("x={v}").as_str())
        );
    }
}

mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn text_without_actions_is_unchanged(text in "[^{]*(\\{[^{]+)*") {
            prop_assert_eq!(expand(&text, 1.0), Ok(text.clone()));
        }

        #[test]
        fn go_float_round_trips(v in any::<f64>().prop_filter("finite", |v| v.is_finite())) {
            let parsed: f64 = format_go_float(v).parse().expect("parses back");
            prop_assert_eq!(parsed.to_bits(), v.to_bits());
            let parsed_e: f64 = format_go_float_e(v).parse().expect("parses back");
            prop_assert_eq!(parsed_e.to_bits(), v.to_bits());
        }

        #[test]
        fn arbitrary_text_never_panics(text in "\\PC{0,80}") {
            let _ = expand(&text, 1.0);
            let _ = expand(&format!("{{{{{text}}}}}"), 1.0);
        }
    }
}
