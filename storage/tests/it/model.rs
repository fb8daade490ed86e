//! Head + WAL against a BTreeMap model: random lists of append / commit / rollback / reopen,
//! with every `append` result and the final (and intermediate) query results checked.

use crate::common::{all, dump, lbl, opts};
use argus_storage::{Appendable, Appender, Db, Error, Labels, stale_nan};
use proptest::prelude::*;
use std::collections::{BTreeMap, HashMap};

#[derive(Clone, Debug)]
enum Op {
    Append { s: usize, t: i64, v: usize },
    Commit,
    Rollback,
    Reopen,
    Check,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (0usize..4, 0i64..60, 0usize..4).prop_map(|(s, t, v)| Op::Append { s, t, v }),
        2 => Just(Op::Commit),
        1 => Just(Op::Rollback),
        1 => Just(Op::Reopen),
        1 => Just(Op::Check),
    ]
}

fn value(i: usize) -> f64 {
    [0.0, 1.0, -2.5, stale_nan()][i]
}

fn series(s: usize) -> Labels {
    let sv = s.to_string();
    lbl(&[("__name__", "model"), ("s", &sv)])
}

#[derive(Default)]
struct Model {
    committed: BTreeMap<usize, Vec<(i64, u64)>>,
    pending: Vec<(usize, i64, u64)>,
    pending_last: HashMap<usize, (i64, u64)>,
}

impl Model {
    fn last(&self, s: usize) -> Option<(i64, u64)> {
        let c = self.committed.get(&s).and_then(|v| v.last().copied());
        match (c, self.pending_last.get(&s).copied()) {
            (Some(a), Some(b)) => Some(if b.0 > a.0 { b } else { a }),
            (a, b) => a.or(b),
        }
    }

    /// The result `append` must give: Ok(true) = added, Ok(false) = accepted no-op.
    fn append(&mut self, s: usize, t: i64, bits: u64) -> Result<bool, &'static str> {
        match self.last(s) {
            Some((lt, lb)) if t == lt => {
                if lb == bits {
                    Ok(false)
                } else {
                    Err("duplicate")
                }
            }
            Some((lt, _)) if t < lt => Err("out_of_order"),
            _ => {
                self.pending.push((s, t, bits));
                self.pending_last.insert(s, (t, bits));
                Ok(true)
            }
        }
    }

    fn commit(&mut self) {
        for (s, t, b) in self.pending.drain(..) {
            self.committed.entry(s).or_default().push((t, b));
        }
        self.pending_last.clear();
    }

    fn rollback(&mut self) {
        self.pending.clear();
        self.pending_last.clear();
    }
}

fn check(db: &Db, model: &Model) -> Result<(), TestCaseError> {
    let got: BTreeMap<Labels, Vec<(i64, u64)>> = dump(db, &all(), i64::MIN, i64::MAX)
        .into_iter()
        .map(|(l, s)| (l, s.into_iter().map(|(t, v)| (t, v.to_bits())).collect()))
        .collect();
    let want: BTreeMap<Labels, Vec<(i64, u64)>> = model
        .committed
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(s, v)| (series(*s), v.clone()))
        .collect();
    prop_assert_eq!(got, want);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn head_and_wal_match_model(ops in proptest::collection::vec(op(), 1..80)) {
        let dir = tempfile::tempdir().unwrap();
        let mut db = Db::open(dir.path(), opts()).unwrap();
        let mut app: Box<dyn Appender> = db.appender();
        let mut model = Model::default();
        for op in ops {
            match op {
                Op::Append { s, t, v } => {
                    let v = value(v);
                    let want = model.append(s, t, v.to_bits());
                    let got = app.append(None, &series(s), t, v);
                    match (want, got) {
                        (Ok(_), Ok(_)) => {}
                        (Err("duplicate"), Err(Error::DuplicateSample)) => {}
                        (Err("out_of_order"), Err(Error::OutOfOrder)) => {}
                        (w, g) => prop_assert!(false, "append s={s} t={t}: want {w:?}, got {g:?}"),
                    }
                }
                Op::Commit => {
                    app.commit().unwrap();
                    model.commit();
                }
                Op::Rollback => {
                    app.rollback();
                    model.rollback();
                }
                Op::Reopen => {
                    drop(app);
                    model.rollback();
                    db.close().unwrap();
                    drop(db);
                    db = Db::open(dir.path(), opts()).unwrap_or_else(|e| panic!("reopen: {e}"));
                    app = db.appender();
                }
                Op::Check => check(&db, &model)?,
            }
        }
        app.commit().unwrap();
        model.commit();
        check(&db, &model)?;
        drop(app);
        db.close().unwrap();
        drop(db);
        let db = Db::open(dir.path(), opts()).unwrap();
        check(&db, &model)?;
    }
}
