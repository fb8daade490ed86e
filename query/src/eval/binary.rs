//! Binary operators: scalar/scalar, vector/scalar, and vector/vector with one-to-one,
//! many-to-one (group_left), one-to-many (group_right) and set (and/or/unless) matching.
//! Signatures and result labels are computed once per series (pair), not per step.

use super::{Ctx, Evaluator};
use crate::error::{Error, Result};
use crate::value::{Series, Val};
use argus_storage::histogram::ops;
use argus_storage::{CounterResetHint, FloatHistogram, Labels, METRIC_NAME};
use promql_parser::parser::{BinaryExpr, LabelModifier};

/// An arithmetic or comparison operator, resolved once per node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ArithOp {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Pow,
    Atan2,
    Eq,
    Ne,
    Gt,
    Lt,
    Ge,
    Le,
}

impl ArithOp {
    pub(crate) fn parse(op: &str) -> Result<Self> {
        Ok(match op {
            "+" => Self::Add,
            "-" => Self::Sub,
            "*" => Self::Mul,
            "/" => Self::Div,
            "%" => Self::Mod,
            "^" => Self::Pow,
            "atan2" => Self::Atan2,
            "==" => Self::Eq,
            "!=" => Self::Ne,
            ">" => Self::Gt,
            "<" => Self::Lt,
            ">=" => Self::Ge,
            "<=" => Self::Le,
            other => {
                return Err(Error::bad_data(format!(
                    "operator {other:?} not allowed here"
                )));
            }
        })
    }

    pub(super) fn is_cmp(self) -> bool {
        matches!(
            self,
            Self::Eq | Self::Ne | Self::Gt | Self::Lt | Self::Ge | Self::Le
        )
    }
}

/// Applies an arithmetic or comparison operator. Returns the value and whether to keep it
/// (comparisons return the left value and the comparison's outcome).
#[inline]
pub(crate) fn elem_op(op: ArithOp, l: f64, r: f64) -> (f64, bool) {
    match op {
        ArithOp::Add => (l + r, true),
        ArithOp::Sub => (l - r, true),
        ArithOp::Mul => (l * r, true),
        ArithOp::Div => (l / r, true),
        ArithOp::Mod => (l % r, true),
        ArithOp::Pow => (l.powf(r), true),
        ArithOp::Atan2 => (l.atan2(r), true),
        ArithOp::Eq => (l, l == r),
        ArithOp::Ne => (l, l != r),
        ArithOp::Gt => (l, l > r),
        ArithOp::Lt => (l, l < r),
        ArithOp::Ge => (l, l >= r),
        ArithOp::Le => (l, l <= r),
    }
}

/// One operand of an element-wise operation.
#[derive(Clone, Copy)]
pub(crate) enum Operand<'a> {
    F(f64),
    H(&'a FloatHistogram),
}

/// The result of an element-wise operation that keeps its sample.
pub(crate) enum Res {
    F(f64),
    H(FloatHistogram),
}

impl ArithOp {
    fn symbol(self) -> &'static str {
        match self {
            Self::Add => "+",
            Self::Sub => "-",
            Self::Mul => "*",
            Self::Div => "/",
            Self::Mod => "%",
            Self::Pow => "^",
            Self::Atan2 => "atan2",
            Self::Eq => "==",
            Self::Ne => "!=",
            Self::Gt => ">",
            Self::Lt => "<",
            Self::Ge => ">=",
            Self::Le => "<=",
        }
    }
}

impl Evaluator<'_> {
    /// Applies `op` to two operands of either kind, as Prometheus's `vectorElemBinop`:
    /// histograms support `+`/`-` with histograms, `*` with floats (either side), `/` by a
    /// float, and `==`/`!=` with histograms; anything else is dropped with an info. With
    /// `return_bool` comparisons give 1/0 (incompatible pairs give 0). `None` drops the sample.
    pub(crate) fn combine(
        &self,
        op: ArithOp,
        l: Operand<'_>,
        r: Operand<'_>,
        return_bool: bool,
    ) -> Option<Res> {
        let kind = |o: &Operand<'_>| match o {
            Operand::F(_) => "float",
            Operand::H(_) => "histogram",
        };
        let (res, keep): (Option<Res>, bool) = match (l, r) {
            (Operand::F(a), Operand::F(b)) => {
                let (v, keep) = elem_op(op, a, b);
                (Some(Res::F(v)), keep)
            }
            (Operand::H(h), Operand::F(f)) if matches!(op, ArithOp::Mul | ArithOp::Div) => {
                let mut h = h.clone();
                if op == ArithOp::Mul {
                    ops::mul(&mut h, f);
                } else {
                    ops::div(&mut h, f);
                }
                ops::compact(&mut h);
                (Some(Res::H(h)), true)
            }
            (Operand::F(f), Operand::H(h)) if op == ArithOp::Mul => {
                let mut h = h.clone();
                ops::mul(&mut h, f);
                ops::compact(&mut h);
                (Some(Res::H(h)), true)
            }
            (Operand::H(a), Operand::H(b)) if matches!(op, ArithOp::Add | ArithOp::Sub) => {
                let mut h = a.clone();
                let sub = op == ArithOp::Sub;
                let what = if sub { "subtraction" } else { "addition" };
                match ops::add(&mut h, b, sub) {
                    Err(_) => {
                        self.annos.warn(format!(
                            "incompatible bucket layout encountered for binary operator {}",
                            op.symbol()
                        ));
                        return None;
                    }
                    Ok(info) => {
                        if info.custom_bounds_reconciled {
                            self.annos
                                .info(crate::annotations::custom_buckets_reconciled(what));
                        }
                        if info.counter_reset_collision {
                            self.annos
                                .warn(crate::annotations::counter_reset_collision(what));
                            return None;
                        }
                    }
                }
                if sub {
                    h.counter_reset_hint = CounterResetHint::Gauge;
                }
                ops::compact(&mut h);
                (Some(Res::H(h)), true)
            }
            (Operand::H(a), Operand::H(b)) if matches!(op, ArithOp::Eq | ArithOp::Ne) => {
                let eq = hist_equal(a, b);
                (
                    Some(Res::H(a.clone())),
                    if op == ArithOp::Eq { eq } else { !eq },
                )
            }
            _ => {
                self.annos.info(format!(
                    "incompatible sample types encountered for binary operator {:?}: {} {} {}",
                    op.symbol(),
                    kind(&l),
                    op.symbol(),
                    kind(&r)
                ));
                return None;
            }
        };
        if return_bool {
            return Some(Res::F(if keep { 1.0 } else { 0.0 }));
        }
        if keep { res } else { None }
    }
}

/// Exact histogram equality after compaction (Prometheus's `Equals` on compacted histograms;
/// the counter-reset hint is not compared).
fn hist_equal(a: &FloatHistogram, b: &FloatHistogram) -> bool {
    let (mut a, mut b) = (a.clone(), b.clone());
    ops::compact(&mut a);
    ops::compact(&mut b);
    a.counter_reset_hint = CounterResetHint::Unknown;
    b.counter_reset_hint = CounterResetHint::Unknown;
    if !a.uses_custom_buckets() {
        a.custom_values.clear();
        b.custom_values.clear();
    }
    let bits = |x: f64| x.to_bits();
    a.schema == b.schema
        && a.zero_threshold == b.zero_threshold
        && bits(a.zero_count) == bits(b.zero_count)
        && bits(a.count) == bits(b.count)
        && bits(a.sum) == bits(b.sum)
        && a.positive_spans == b.positive_spans
        && a.negative_spans == b.negative_spans
        && a.positive_buckets
            .iter()
            .map(|x| x.to_bits())
            .eq(b.positive_buckets.iter().map(|x| x.to_bits()))
        && a.negative_buckets
            .iter()
            .map(|x| x.to_bits())
            .eq(b.negative_buckets.iter().map(|x| x.to_bits()))
        && a.custom_values == b.custom_values
}

/// Appends a result point to `s`.
pub(super) fn push_res(s: &mut Series, t: i64, r: Res) -> Result<()> {
    let dup = s.points.last().is_some_and(|p| p.0 == t) || s.hists.last().is_some_and(|p| p.0 == t);
    if dup {
        return Err(Error::execution(
            "vector cannot contain metrics with the same labelset",
        ));
    }
    match r {
        Res::F(v) => s.points.push((t, v)),
        Res::H(h) => s.hists.push((t, h)),
    }
    Ok(())
}

fn is_set_op(op: &str) -> bool {
    matches!(op, "and" | "or" | "unless")
}

/// Per-step cursors over a vector's series: yields the series present at each step. A series
/// whose sample at the step is a histogram is reported with a NaN value and `hist(i)` set.
pub(super) struct StepCursor {
    pos: Vec<usize>,
    hpos: Vec<usize>,
    /// Per series: index into `hists` of its sample at the current step, if a histogram.
    at_hist: Vec<Option<usize>>,
}

impl StepCursor {
    pub(super) fn new(n: usize) -> Self {
        Self {
            pos: vec![0; n],
            hpos: vec![0; n],
            at_hist: vec![None; n],
        }
    }
    pub(super) fn collect(&mut self, ss: &[Series], t: i64, out: &mut Vec<(usize, f64)>) {
        out.clear();
        for (i, s) in ss.iter().enumerate() {
            let p = &mut self.pos[i];
            self.at_hist[i] = None;
            if *p < s.points.len() && s.points[*p].0 == t {
                out.push((i, s.points[*p].1));
                *p += 1;
                continue;
            }
            let hp = &mut self.hpos[i];
            if *hp < s.hists.len() && s.hists[*hp].0 == t {
                out.push((i, f64::NAN));
                self.at_hist[i] = Some(*hp);
                *hp += 1;
            }
        }
    }
    /// The operand of series `i` at the current step (`v` is its collected value).
    pub(super) fn operand<'a>(&self, ss: &'a [Series], i: usize, v: f64) -> Operand<'a> {
        match self.at_hist[i] {
            Some(k) => Operand::H(&ss[i].hists[k].1),
            None => Operand::F(v),
        }
    }
    /// The sample of series `i` at the current step as a result value.
    fn value(&self, ss: &[Series], i: usize, v: f64) -> Res {
        match self.at_hist[i] {
            Some(k) => Res::H(ss[i].hists[k].1.clone()),
            None => Res::F(v),
        }
    }
}

/// Interns matching signatures (label subsets) to small integers.
struct Sigs {
    ids: crate::value::LabelsMap<usize>,
    labels: Vec<Labels>,
    /// The current series' matching labels, refilled in place.
    key: Labels,
}

impl Sigs {
    fn new() -> Self {
        Self {
            ids: Default::default(),
            labels: Vec::new(),
            key: Labels::empty(),
        }
    }
    /// The id of the matching labels of `l`.
    fn id(&mut self, l: &Labels, m: Option<&LabelModifier>) -> usize {
        match_labels_into(l, m, &mut self.key);
        if let Some(&id) = self.ids.get(&self.key) {
            return id;
        }
        let id = self.labels.len();
        self.ids.insert(self.key.clone(), id);
        self.labels.push(self.key.clone());
        id
    }
}

/// The labels a series is matched on: `on(...)` keeps the listed labels; otherwise all labels
/// except the `ignoring(...)` ones and the metric name. Written into `out`, reusing its buffers.
pub(super) fn match_labels_into(l: &Labels, m: Option<&LabelModifier>, out: &mut Labels) {
    crate::value::filter_labels_into(
        l,
        |p| match m {
            Some(LabelModifier::Include(names)) => names.labels.contains(&p.name),
            Some(LabelModifier::Exclude(names)) => {
                p.name != METRIC_NAME && !names.labels.contains(&p.name)
            }
            None => p.name != METRIC_NAME,
        },
        out,
    );
}

impl Evaluator<'_> {
    pub(crate) fn binary(&self, b: &BinaryExpr, c: Ctx) -> Result<Val> {
        let op = b.op.to_string().to_lowercase();
        let return_bool = b.return_bool();
        let lhs = self.eval(&b.lhs, c)?;
        let rhs = self.eval(&b.rhs, c)?;
        let in_samples = lhs.samples() + rhs.samples();
        let out = match (lhs, rhs) {
            (Val::Scalar(l), Val::Scalar(r)) => {
                let mut out = Vec::with_capacity(l.len());
                let aop = ArithOp::parse(&op)?;
                for (a, b) in l.iter().zip(&r) {
                    let (v, keep) = elem_op(aop, *a, *b);
                    out.push(if aop.is_cmp() {
                        if keep { 1.0 } else { 0.0 }
                    } else {
                        v
                    });
                }
                Val::Scalar(out)
            }
            (Val::Vector(v), Val::Scalar(s)) => Val::Vector(self.vector_scalar(
                ArithOp::parse(&op)?,
                v,
                &s,
                false,
                return_bool,
                c,
            )?),
            (Val::Scalar(s), Val::Vector(v)) => Val::Vector(self.vector_scalar(
                ArithOp::parse(&op)?,
                v,
                &s,
                true,
                return_bool,
                c,
            )?),
            (Val::Vector(l), Val::Vector(r)) => {
                if is_set_op(&op) {
                    Val::Vector(self.set_op(&op, b, l, r, c)?)
                } else {
                    Val::Vector(self.vector_vector(
                        ArithOp::parse(&op)?,
                        b,
                        l,
                        r,
                        return_bool,
                        c,
                    )?)
                }
            }
            _ => {
                return Err(Error::bad_data(format!(
                    "binary operator {op:?} not allowed between these operand types"
                )));
            }
        };
        self.limits.release(in_samples);
        self.limits.add(out.samples())?;
        Ok(out)
    }

    fn vector_scalar(
        &self,
        op: ArithOp,
        mut v: Vec<Series>,
        s: &[f64],
        swap: bool,
        return_bool: bool,
        c: Ctx,
    ) -> Result<Vec<Series>> {
        let cmp = op.is_cmp();
        for series in &mut v {
            self.limits.check()?;
            let mut pts = Vec::with_capacity(series.points.len());
            for &(t, x) in &series.points {
                let sv = s[c.index(t)];
                let (l, r) = if swap { (sv, x) } else { (x, sv) };
                let (mut val, mut keep) = elem_op(op, l, r);
                if cmp && swap {
                    val = r;
                }
                if return_bool {
                    val = if keep { 1.0 } else { 0.0 };
                    keep = true;
                }
                if keep {
                    pts.push((t, val));
                }
            }
            series.points = pts;
            if !series.hists.is_empty() {
                let hists = std::mem::take(&mut series.hists);
                for (t, h) in &hists {
                    let sv = Operand::F(s[c.index(*t)]);
                    let (l, r) = if swap {
                        (sv, Operand::H(h))
                    } else {
                        (Operand::H(h), sv)
                    };
                    match self.combine(op, l, r, return_bool) {
                        // A comparison keeps the vector's own sample.
                        Some(Res::H(_)) if cmp => series.hists.push((*t, h.clone())),
                        Some(Res::H(x)) => series.hists.push((*t, x)),
                        Some(Res::F(x)) => {
                            let at = series.points.partition_point(|p| p.0 < *t);
                            series.points.insert(at, (*t, x));
                        }
                        None => {}
                    }
                }
            }
            if !cmp || return_bool {
                series.drop_name = true;
            }
        }
        v.retain(|s| !s.is_empty());
        Ok(v)
    }

    fn set_op(
        &self,
        op: &str,
        b: &BinaryExpr,
        lhs: Vec<Series>,
        rhs: Vec<Series>,
        c: Ctx,
    ) -> Result<Vec<Series>> {
        let matching = b.modifier.as_ref().and_then(|m| m.matching.as_ref());
        let mut sigs = Sigs::new();
        let lsig: Vec<usize> = lhs.iter().map(|s| sigs.id(&s.labels, matching)).collect();
        let rsig: Vec<usize> = rhs.iter().map(|s| sigs.id(&s.labels, matching)).collect();
        let mut mark = vec![usize::MAX; sigs.labels.len()];
        let mut lout: Vec<Series> = lhs
            .iter()
            .map(|s| Series::new(s.labels.clone(), s.drop_name))
            .collect();
        let mut rout: Vec<Series> = rhs
            .iter()
            .map(|s| Series::new(s.labels.clone(), s.drop_name))
            .collect();
        let (mut lc, mut rc) = (StepCursor::new(lhs.len()), StepCursor::new(rhs.len()));
        let (mut lnow, mut rnow) = (Vec::new(), Vec::new());
        for i in 0..c.n() {
            self.limits.check()?;
            let t = c.t(i);
            lc.collect(&lhs, t, &mut lnow);
            rc.collect(&rhs, t, &mut rnow);
            match op {
                "and" | "unless" => {
                    for &(j, _) in &rnow {
                        mark[rsig[j]] = i;
                    }
                    for &(j, v) in &lnow {
                        let hit = mark[lsig[j]] == i;
                        if hit == (op == "and") {
                            push_res(&mut lout[j], t, lc.value(&lhs, j, v))?;
                        }
                    }
                }
                _ => {
                    for &(j, v) in &lnow {
                        mark[lsig[j]] = i;
                        push_res(&mut lout[j], t, lc.value(&lhs, j, v))?;
                    }
                    for &(j, v) in &rnow {
                        if mark[rsig[j]] != i {
                            push_res(&mut rout[j], t, rc.value(&rhs, j, v))?;
                        }
                    }
                }
            }
        }
        let mut out: Vec<Series> = lout.into_iter().filter(|s| !s.is_empty()).collect();
        out.extend(rout.into_iter().filter(|s| !s.is_empty()));
        Ok(out)
    }
}
