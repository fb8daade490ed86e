//! `query/FUNCTIONS.md` is generated from the function table (`argus_query::functions()`):
//! the docs list exactly what the parse check accepts and the evaluator dispatches.
//! Regenerate with `ARGUS_BLESS=1 cargo test -p argus-query --test it functions::`.

use std::path::Path;

fn generated() -> String {
    let mut out = String::from(
        "# PromQL functions Argus evaluates\n\n\
         Generated from the function table in `src/functions/table.rs` by\n\
         `ARGUS_BLESS=1 cargo test -p argus-query --test it functions::`; do not edit by hand.\n\
         Signatures as in Prometheus's docs (`[…]` marks optional arguments). Functions marked\n\
         experimental need `--enable-feature=promql-experimental-functions` in Prometheus;\n\
         Argus evaluates them without a flag.\n\n\
         | Function | Signature | Experimental |\n\
         | --- | --- | --- |\n",
    );
    for f in argus_query::functions() {
        let exp = if f.experimental { "yes" } else { "" };
        out.push_str(&format!("| `{}` | `{}` | {exp} |\n", f.name, f.signature));
    }
    out
}

#[test]
fn functions_doc_is_generated_from_the_table() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("FUNCTIONS.md");
    let want = generated();
    if std::env::var_os("ARGUS_BLESS").is_some() {
        std::fs::write(&path, &want).expect("write FUNCTIONS.md");
    }
    let got = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        got == want,
        "{} is stale; regenerate it (see this file's header).\nexpected:\n{want}\ngot:\n{got}",
        path.display()
    );
}

#[test]
fn every_listed_function_evaluates_and_unknown_ones_are_refused() {
    let engine = argus_query::Engine::new(argus_query::EngineOptions::default());
    let db = argus_storage::testing::MemStorage::new();
    let names: Vec<&str> = argus_query::functions().map(|f| f.name).collect();
    assert!(names.len() > 80, "{names:?}");
    for q in [
        "rate(x[5m])",
        "time()",
        "label_join(x, \"a\", \",\", \"b\")",
    ] {
        assert!(engine.instant_query(&db, q, 0).is_ok(), "{q}");
    }
    let e = engine
        .instant_query(&db, "start_timestamp(x)", 0)
        .unwrap_err();
    assert_eq!(e.kind, argus_query::ErrorKind::BadData);
    assert!(e.message.contains("not supported"), "{}", e.message);
}
