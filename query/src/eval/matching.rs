//! Vector/vector matching for arithmetic and comparison operators, as Prometheus's
//! `VectorBinop`: one-to-one, many-to-one (`group_left`) and one-to-many (`group_right`), with
//! the `fill_left`/`fill_right` modifiers.
//!
//! The two operands are cast as a *many* side, whose series are kept in the result, and a
//! *one* side, which must hold at most one series per match group at each step: for
//! `group_right` the many side is the right operand, otherwise the left (in one-to-one matching
//! both sides are unique; the left one is kept). Series of both sides meet in a [`Group`] (the
//! labels they match on); the signatures and result labels are computed once per series (pair),
//! and each step only walks the series with a sample at that step.

use super::binary::{ArithOp, Operand, Res, StepCursor, match_labels_into, push_res};
use super::{Ctx, Evaluator};
use crate::error::{Error, Result};
use crate::value::Series;
use argus_storage::Labels;
use promql_parser::parser::{BinaryExpr, LabelModifier, VectorMatchCardinality};
use std::collections::HashMap;

/// No step yet (step markers compare against the current step index).
const NEVER: usize = usize::MAX;

/// The series of both sides that share one set of matching labels, and what the current step
/// has seen of them.
struct Group {
    /// The matching labels (named in errors; the labels of `fill_left`/`fill_right` results
    /// built from the one side).
    labels: Labels,
    /// The step at which a one-side series of the group last had a sample, and that series.
    one_step: usize,
    one: usize,
    /// The step at which a many-side series of the group last had a sample.
    many_step: usize,
    /// The step at which the group last made a one-to-one match (a second one is an error).
    matched_step: usize,
    /// The outputs written for the group at `outs_step` (in group_left/right matching each
    /// output takes at most one sample per step).
    outs_step: usize,
    outs: Vec<usize>,
    /// The output for one-side samples without a many-side partner (with a many-side fill).
    fill_out: Option<usize>,
}

/// A many-side series: its group and its output series.
struct ManySeries {
    group: usize,
    /// The one-side series it was last matched with, and the output that pair writes to
    /// (usually the same from step to step).
    last: Option<(usize, usize)>,
    /// The output for its samples without a one-side partner (with a one-side fill).
    fill_out: Option<usize>,
}

/// A one-side series: its group and its value at the current step.
struct OneSeries {
    group: usize,
    value: f64,
}

/// No further output series with the same label hash.
const NO_NEXT: usize = usize::MAX;

/// The result series, found by labels (two pairs may produce the same labels) and by pair.
///
/// By labels through their hash: `by_hash` holds the newest output with a hash, `next` chains
/// to the older ones, and candidates are compared with their series' labels. The labels are
/// stored once, in the series (a map keyed by `Labels` held a second copy of every output's
/// labels: ~20 MiB of a 48,000-series `group_left` result, benches/README.md "Peak RSS").
#[derive(Default)]
struct Outputs {
    series: Vec<Series>,
    hasher: foldhash::fast::RandomState,
    by_hash: HashMap<u64, usize, foldhash::fast::RandomState>,
    /// Per output series: the previous output with the same label hash, or [`NO_NEXT`].
    next: Vec<usize>,
    by_pair: HashMap<(usize, usize), usize, foldhash::fast::RandomState>,
}

impl Outputs {
    /// The output series with `labels`, created on first use.
    fn get(&mut self, labels: Labels, drop_name: bool) -> usize {
        use std::hash::BuildHasher;
        let h = self.hasher.hash_one(&labels);
        let head = self.by_hash.get(&h).copied().unwrap_or(NO_NEXT);
        let mut i = head;
        while i != NO_NEXT {
            if self.series[i].labels == labels {
                return i;
            }
            i = self.next[i];
        }
        let new = self.series.len();
        self.series.push(Series::new(labels, drop_name));
        self.next.push(head);
        self.by_hash.insert(h, new);
        new
    }
}

/// One vector/vector operation: the operator, the matching modifiers and the two sides.
struct VectorMatch<'a> {
    ev: &'a Evaluator<'a>,
    op: ArithOp,
    return_bool: bool,
    matching: Option<&'a LabelModifier>,
    one_to_one: bool,
    /// `group_right`: the many side is the right operand.
    one_to_many: bool,
    /// The `group_left(…)`/`group_right(…)` labels copied from the one side.
    include: &'a [String],
    /// `fill_*` values for a missing many-side and one-side sample.
    fill_many: Option<f64>,
    fill_one: Option<f64>,
    many: &'a [Series],
    one: &'a [Series],
    groups: Vec<Group>,
    many_series: Vec<ManySeries>,
    one_series: Vec<OneSeries>,
    out: Outputs,
}

impl Evaluator<'_> {
    /// Applies an arithmetic or comparison operator between two instant vectors.
    pub(super) fn vector_vector(
        &self,
        op: ArithOp,
        b: &BinaryExpr,
        lhs: Vec<Series>,
        rhs: Vec<Series>,
        return_bool: bool,
        c: Ctx,
    ) -> Result<Vec<Series>> {
        let modifier = b.modifier.as_ref();
        let card = modifier.map(|m| &m.card);
        let include: &[String] = match card {
            Some(VectorMatchCardinality::ManyToOne(l) | VectorMatchCardinality::OneToMany(l)) => {
                &l.labels
            }
            _ => &[],
        };
        let one_to_many = matches!(card, Some(VectorMatchCardinality::OneToMany(_)));
        let (many, one) = if one_to_many {
            (&rhs, &lhs)
        } else {
            (&lhs, &rhs)
        };
        // Prometheus applies `fill_left` to the many side and `fill_right` to the one side,
        // also under `group_right`, where the many side is the right operand
        // (fill-modifier.test).
        let fills = modifier.map(|m| m.fill_values.clone()).unwrap_or_default();
        let mut m = VectorMatch {
            ev: self,
            op,
            return_bool,
            matching: modifier.and_then(|m| m.matching.as_ref()),
            one_to_one: matches!(card, None | Some(VectorMatchCardinality::OneToOne)),
            one_to_many,
            include,
            fill_many: fills.lhs,
            fill_one: fills.rhs,
            many,
            one,
            groups: Vec::new(),
            many_series: Vec::with_capacity(many.len()),
            one_series: Vec::with_capacity(one.len()),
            out: Outputs::default(),
        };
        m.group_series();
        m.run(c)?;
        Ok(m.out.series)
    }
}

impl VectorMatch<'_> {
    /// Sorts every series of both sides into its group.
    fn group_series(&mut self) {
        let mut ids: crate::value::LabelsMap<usize> = Default::default();
        let groups = &mut self.groups;
        let mut key = Labels::empty();
        let mut group_of = |s: &Series| {
            match_labels_into(&s.labels, self.matching, &mut key);
            if let Some(&g) = ids.get(&key) {
                return g;
            }
            ids.insert(key.clone(), groups.len());
            groups.push(Group {
                labels: key.clone(),
                one_step: NEVER,
                one: 0,
                many_step: NEVER,
                matched_step: NEVER,
                outs_step: NEVER,
                outs: Vec::new(),
                fill_out: None,
            });
            groups.len() - 1
        };
        for s in self.many {
            self.many_series.push(ManySeries {
                group: group_of(s),
                last: None,
                fill_out: None,
            });
        }
        for s in self.one {
            self.one_series.push(OneSeries {
                group: group_of(s),
                value: 0.0,
            });
        }
    }

    fn run(&mut self, c: Ctx) -> Result<()> {
        let (mut many_cur, mut one_cur) = (
            StepCursor::new(self.many.len()),
            StepCursor::new(self.one.len()),
        );
        let (mut many_now, mut one_now) = (Vec::new(), Vec::new());
        for i in 0..c.n() {
            self.ev.limits.check()?;
            let t = c.t(i);
            many_cur.collect(self.many, t, &mut many_now);
            one_cur.collect(self.one, t, &mut one_now);
            if (many_now.is_empty() && self.fill_many.is_none())
                || (one_now.is_empty() && self.fill_one.is_none())
            {
                continue;
            }
            self.place_one_side(i, &one_now)?;
            for &(j, v) in &many_now {
                let many_op = many_cur.operand(self.many, j, v);
                self.match_many(i, t, j, many_op, &one_cur)?;
            }
            if let Some(fill) = self.fill_many {
                for &(j, v) in &one_now {
                    let one_op = one_cur.operand(self.one, j, v);
                    self.fill_many_side(i, t, j, one_op, fill)?;
                }
            }
        }
        Ok(())
    }

    /// Records the one-side series with a sample at step `i`; two in one group are an error.
    fn place_one_side(&mut self, i: usize, now: &[(usize, f64)]) -> Result<()> {
        for &(j, v) in now {
            let member = &mut self.one_series[j];
            member.value = v;
            let g = &mut self.groups[member.group];
            if g.one_step == i {
                let side = if self.one_to_many { "left" } else { "right" };
                let (mut a, mut b) = (&self.one[j].labels, &self.one[g.one].labels);
                if a > b {
                    std::mem::swap(&mut a, &mut b);
                }
                return Err(Error::execution(format!(
                    "found duplicate series for the match group {} on the {side} hand-side \
                     of the operation: [{a}, {b}];many-to-many matching not allowed: \
                     matching labels must be unique on one side",
                    g.labels
                )));
            }
            g.one_step = i;
            g.one = j;
        }
        Ok(())
    }

    /// Combines many-side series `j`'s sample at step `i` with its group's one-side sample
    /// (or the one-side fill value) and appends the result to the pair's output series.
    fn match_many(
        &mut self,
        i: usize,
        t: i64,
        j: usize,
        many_op: Operand<'_>,
        one_cur: &StepCursor,
    ) -> Result<()> {
        let gi = self.many_series[j].group;
        let g = &mut self.groups[gi];
        g.many_step = i;
        if g.one_step != i {
            return self.fill_one_side(t, j, many_op);
        }
        let oj = g.one;
        if self.one_to_one {
            if g.matched_step == i {
                return Err(Error::execution(
                    "multiple matches for labels: many-to-one matching must be explicit \
                     (group_left/group_right)",
                ));
            }
            g.matched_step = i;
        }
        let one_op = one_cur.operand(self.one, oj, self.one_series[oj].value);
        let Some(val) = self.combine(many_op, one_op) else {
            return Ok(());
        };
        let oi = self.pair_output(j, oj);
        if !self.one_to_one {
            let g = &mut self.groups[gi];
            if g.outs_step != i {
                g.outs_step = i;
                g.outs.clear();
            }
            if g.outs.contains(&oi) {
                return Err(Error::execution(
                    "multiple matches for labels: grouping labels must ensure unique matches",
                ));
            }
            g.outs.push(oi);
        }
        push_res(&mut self.out.series[oi], t, val)
    }

    /// A many-side sample without a one-side partner: combined with `fill_*` of the one side,
    /// or dropped.
    fn fill_one_side(&mut self, t: i64, j: usize, many_op: Operand<'_>) -> Result<()> {
        let Some(fill) = self.fill_one else {
            return Ok(());
        };
        let Some(val) = self.combine(many_op, Operand::F(fill)) else {
            return Ok(());
        };
        let oi = match self.many_series[j].fill_out {
            Some(oi) => oi,
            None => {
                let labels = self.result_labels(&self.many[j].labels, &Labels::empty());
                let drop = self.drops_name(&self.many[j]);
                let oi = self.out.get(labels, drop);
                self.many_series[j].fill_out = Some(oi);
                oi
            }
        };
        push_res(&mut self.out.series[oi], t, val)
    }

    /// A one-side sample whose group has no many-side sample at step `i`: combined with
    /// `fill_*` of the many side into a series labelled with the matching labels.
    fn fill_many_side(
        &mut self,
        i: usize,
        t: i64,
        j: usize,
        one_op: Operand<'_>,
        fill: f64,
    ) -> Result<()> {
        let gi = self.one_series[j].group;
        if self.groups[gi].many_step == i {
            return Ok(());
        }
        let Some(val) = self.combine(Operand::F(fill), one_op) else {
            return Ok(());
        };
        let oi = match self.groups[gi].fill_out {
            Some(oi) => oi,
            None => {
                let drop = !self.op.is_cmp() || self.return_bool;
                let oi = self.out.get(self.groups[gi].labels.clone(), drop);
                self.groups[gi].fill_out = Some(oi);
                oi
            }
        };
        push_res(&mut self.out.series[oi], t, val)
    }

    /// Applies the operator to a many-side and a one-side operand, in operand order.
    fn combine(&self, many: Operand<'_>, one: Operand<'_>) -> Option<Res> {
        let (l, r) = if self.one_to_many {
            (one, many)
        } else {
            (many, one)
        };
        self.ev.combine(self.op, l, r, self.return_bool)
    }

    /// The output series of the pair (many-side `j`, one-side `oj`), created on first use.
    fn pair_output(&mut self, j: usize, oj: usize) -> usize {
        if let Some((last_one, oi)) = self.many_series[j].last
            && last_one == oj
        {
            return oi;
        }
        let oi = match self.out.by_pair.get(&(j, oj)) {
            Some(&oi) => oi,
            None => {
                let labels = self.result_labels(&self.many[j].labels, &self.one[oj].labels);
                let drop = self.drops_name(&self.many[j]);
                let oi = self.out.get(labels, drop);
                self.out.by_pair.insert((j, oj), oi);
                oi
            }
        };
        self.many_series[j].last = Some((oj, oi));
        oi
    }

    /// Whether results built from many-side series `s` lose the metric name: arithmetic and
    /// `bool` comparisons do; filtering comparisons keep the series as it is.
    fn drops_name(&self, s: &Series) -> bool {
        !self.op.is_cmp() || self.return_bool || s.drop_name
    }

    /// Labels of a result: the many side's labels, reduced to the matching labels in
    /// one-to-one matching, plus the `group_x(…)` labels copied from the one side.
    fn result_labels(&self, many: &Labels, one: &Labels) -> Labels {
        let mut l = many.clone();
        if self.one_to_one {
            match self.matching {
                Some(LabelModifier::Include(names)) => {
                    l = Labels::from_sorted(
                        l.iter()
                            .filter(|p| names.labels.contains(&p.name))
                            .cloned()
                            .collect(),
                    );
                }
                Some(LabelModifier::Exclude(names)) => {
                    for n in &names.labels {
                        l.remove(n);
                    }
                }
                None => {}
            }
        }
        for n in self.include {
            match one.get(n) {
                Some(v) => l.set(n, v),
                None => l.remove(n),
            }
        }
        l
    }
}
