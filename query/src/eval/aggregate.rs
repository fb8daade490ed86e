//! Aggregations: series are grouped once (by/without), then folded step by step into per-group
//! accumulators; no intermediate matrix is built.

use super::{Ctx, Evaluator};
use crate::error::{Error, Result};
use crate::functions::stats::{kahan_inc, quantile};
use crate::value::{Series, Val, format_float};
use argus_storage::{Labels, METRIC_NAME};
use promql_parser::parser::{AggregateExpr, LabelModifier};

#[derive(Clone, Copy, Default)]
struct Acc {
    seen: bool,
    count: f64,
    value: f64,
    comp: f64,
    mean: f64,
    incremental: bool,
}

use crate::functions::hrange::HistAcc;

/// The groups of an aggregation over a materialised input: each series' group, computed once
/// per series, and each group's labels.
struct Groups {
    labels: Vec<Labels>,
    of: Vec<usize>,
}

impl Groups {
    fn new(input: &[Series], m: Option<&LabelModifier>) -> Self {
        let mut keys: crate::value::LabelsMap<usize> = Default::default();
        let mut labels: Vec<Labels> = Vec::new();
        let mut key = Labels::empty();
        let of = input
            .iter()
            .map(|s| {
                group_key_into(&s.labels, m, &mut key);
                if let Some(&g) = keys.get(&key) {
                    return g;
                }
                keys.insert(key.clone(), labels.len());
                labels.push(key.clone());
                labels.len() - 1
            })
            .collect();
        Self { labels, of }
    }
}

impl Evaluator<'_> {
    pub(crate) fn aggregate(&self, a: &AggregateExpr, c: Ctx) -> Result<Val> {
        let op = a.op.to_string().to_lowercase();
        // Parameters first, as Prometheus does.
        let mut param_scalar: Option<Vec<f64>> = None;
        let mut param_string: Option<String> = None;
        if let Some(p) = &a.param {
            if op == "count_values" {
                param_string = Some(self.eval_string(p, c)?);
            } else {
                param_scalar = Some(self.eval_scalar(p, c)?);
            }
        }
        if let Ok(fold) = FoldOp::parse(&op) {
            return self.fold_stream(fold, a, c);
        }
        let input = self.eval_vector(&a.expr, c)?;
        let in_samples: usize = input.iter().map(|s| s.len()).sum();
        if matches!(
            op.as_str(),
            "topk" | "bottomk" | "quantile" | "count_values"
        ) && input.iter().any(|s| !s.hists.is_empty())
        {
            self.annos
                .info(format!("ignored histogram in {op} aggregation"));
        }
        let groups = Groups::new(&input, a.modifier.as_ref());
        let out = match op.as_str() {
            "topk" | "bottomk" | "limitk" | "limit_ratio" => {
                let params = param_scalar.unwrap_or_default();
                self.select_k(&op, &input, &groups.of, groups.labels.len(), &params, c)?
            }
            "quantile" => {
                let params = param_scalar.unwrap_or_default();
                crate::functions::warn_quantiles(self, &params);
                self.quantile_by_group(&input, &groups, &params, c)?
            }
            "count_values" => {
                self.count_values(&input, &groups, &param_string.unwrap_or_default(), c)?
            }
            other => {
                return Err(Error::bad_data(format!(
                    "unsupported aggregation operator {other:?}"
                )));
            }
        };
        self.limits.release(in_samples);
        let out_samples: usize = out.iter().map(|s| s.points.len()).sum();
        self.limits.add(out_samples)?;
        Ok(Val::Vector(out))
    }

    /// `quantile(φ, v)`: the φ-quantile of each group's float samples at each step.
    fn quantile_by_group(
        &self,
        input: &[Series],
        groups: &Groups,
        params: &[f64],
        c: Ctx,
    ) -> Result<Vec<Series>> {
        let n = c.n();
        self.limits.fits(groups.labels.len().saturating_mul(n))?;
        let mut vals: Vec<Vec<Vec<f64>>> = vec![vec![Vec::new(); n]; groups.labels.len()];
        for (s, &g) in input.iter().zip(&groups.of) {
            self.limits.check_work(s.points.len())?;
            for &(t, v) in &s.points {
                vals[g][c.index(t)].push(v);
            }
        }
        let mut out = Vec::new();
        for (g, steps) in vals.iter_mut().enumerate() {
            let mut s = Series::new(groups.labels[g].clone(), false);
            for (i, vs) in steps.iter_mut().enumerate() {
                if !vs.is_empty() {
                    let q = params.get(i).copied().unwrap_or(f64::NAN);
                    s.points.push((c.t(i), quantile(q, vs)));
                }
            }
            out.push(s);
        }
        Ok(out)
    }

    /// `count_values("label", v)`: per group and distinct value, the number of samples with
    /// that value at each step, the value written into `label` (floats as Prometheus formats
    /// them, histograms in their string form).
    fn count_values(
        &self,
        input: &[Series],
        groups: &Groups,
        label: &str,
        c: Ctx,
    ) -> Result<Vec<Series>> {
        if !crate::functions::valid_label_name(label) {
            return Err(Error::execution(format!(
                "invalid label name {}",
                crate::parse::go_quote(label)
            )));
        }
        let n = c.n();
        let mut idx: crate::value::LabelsMap<usize> = Default::default();
        let mut out: Vec<Series> = Vec::new();
        let mut counts: Vec<Vec<f64>> = Vec::new();
        for (s, &g) in input.iter().zip(&groups.of) {
            self.limits.check_work(s.points.len())?;
            let hvals = s
                .hists
                .iter()
                .map(|(t, h)| (*t, crate::functions::native::histogram_string(h)));
            let fvals = s.points.iter().map(|&(t, v)| (t, format_float(v)));
            for (t, v) in fvals.chain(hvals) {
                let mut l = groups.labels[g].clone();
                l.set(label, &v);
                let k = match idx.get(&l) {
                    Some(&k) => k,
                    None => {
                        self.limits
                            .fits(out.len().saturating_add(1).saturating_mul(n))?;
                        idx.insert(l.clone(), out.len());
                        out.push(Series::new(l, false));
                        counts.push(vec![0.0; n]);
                        out.len() - 1
                    }
                };
                counts[k][c.index(t)] += 1.0;
            }
        }
        for (s, cs) in out.iter_mut().zip(counts) {
            s.points = cs
                .iter()
                .enumerate()
                .filter(|(_, v)| **v > 0.0)
                .map(|(i, v)| (c.t(i), *v))
                .collect();
        }
        Ok(out)
    }

    /// sum, avg, count, group, min, max, stddev, stdvar: input series are folded into dense
    /// per-group, per-step accumulators as they arrive and then dropped.
    fn fold_stream(&self, op: FoldOp, a: &AggregateExpr, c: Ctx) -> Result<Val> {
        let n = c.n();
        let mut keys: crate::value::LabelsMap<usize> = Default::default();
        let mut group_labels: Vec<Labels> = Vec::new();
        let mut accs: Vec<Vec<Acc>> = Vec::new();
        let mut drop: Vec<bool> = Vec::new();
        // Histogram accumulators, created only for groups that meet histograms.
        let mut haccs: Vec<Vec<Option<HistAcc>>> = Vec::new();
        let mut ignored = false;
        // The group labels of the current series, refilled in place (no allocation per series).
        let mut key = Labels::empty();
        self.stream_vector(&a.expr, c, &mut |s: &mut Series| {
            self.limits.check_work(s.len())?;
            group_key_into(&s.labels, a.modifier.as_ref(), &mut key);
            let g = match keys.get(&key) {
                Some(&g) => g,
                None => {
                    // One accumulator per step for the new group.
                    self.limits.add(n)?;
                    keys.insert(key.clone(), group_labels.len());
                    group_labels.push(key.clone());
                    accs.push(vec![Acc::default(); n]);
                    haccs.push(Vec::new());
                    drop.push(false);
                    group_labels.len() - 1
                }
            };
            drop[g] |= s.drop_name;
            let row = &mut accs[g];
            for &(t, f) in &s.points {
                fold_one(op, &mut row[c.index(t)], f);
            }
            if !s.hists.is_empty() {
                match op {
                    FoldOp::Sum | FoldOp::Avg | FoldOp::Count | FoldOp::Group => {
                        let hrow = &mut haccs[g];
                        if hrow.is_empty() {
                            hrow.resize_with(n, || None);
                        }
                        for (t, h) in &s.hists {
                            let slot = &mut hrow[c.index(*t)];
                            match slot {
                                None => *slot = Some(HistAcc::new(h)),
                                Some(acc) if matches!(op, FoldOp::Sum | FoldOp::Avg) => {
                                    acc.add(h, op == FoldOp::Avg)
                                }
                                Some(acc) => acc.count += 1.0,
                            }
                        }
                    }
                    _ => ignored = true,
                }
            }
            self.limits.release(s.len());
            Ok(())
        })?;
        if ignored {
            let name = format!("{op:?}").to_lowercase();
            self.annos
                .info(format!("ignored histogram in {name} aggregation"));
        }
        let mut out = Vec::with_capacity(group_labels.len());
        for (g, labels) in group_labels.into_iter().enumerate() {
            let keep_drop = drop[g] && labels.get(METRIC_NAME).is_some();
            let mut s = Series::new(labels, keep_drop);
            let hrow = &mut haccs[g];
            for (i, a) in accs[g].iter().enumerate() {
                let h = hrow.get_mut(i).and_then(Option::take);
                match (a.seen, h) {
                    (true, None) => s.points.push((c.t(i), fold_result(op, a))),
                    (false, None) => {}
                    (seen, Some(h)) => match op {
                        FoldOp::Count => {
                            let floats = if seen { a.count } else { 0.0 };
                            s.points.push((c.t(i), floats + h.count));
                        }
                        FoldOp::Group => s.points.push((c.t(i), 1.0)),
                        _ if seen => self
                            .annos
                            .warn("encountered a mix of histograms and floats for aggregation"),
                        _ => {
                            if let Some(r) = h.finish(self, op == FoldOp::Avg, "") {
                                s.hists.push((c.t(i), r));
                            }
                        }
                    },
                }
            }
            out.push(s);
        }
        self.limits.release(accs.len().saturating_mul(n));
        let out_samples: usize = out.iter().map(|s| s.len()).sum();
        self.limits.add(out_samples)?;
        Ok(Val::Vector(out))
    }

    /// topk, bottomk, limitk, limit_ratio: output series are input series.
    fn select_k(
        &self,
        op: &str,
        input: &[Series],
        group_of: &[usize],
        ngroups: usize,
        params: &[f64],
        c: Ctx,
    ) -> Result<Vec<Series>> {
        let n = c.n();
        let mut out: Vec<Option<Series>> = vec![None; input.len()];
        let mut order: Vec<usize> = Vec::new();
        let mut cursors = vec![0usize; input.len()];
        let mut hcursors = vec![0usize; input.len()];
        let with_hists = matches!(op, "limitk" | "limit_ratio");
        // (series, value, histogram index when the sample is a histogram)
        let mut members: Vec<Vec<(usize, f64, Option<usize>)>> = vec![Vec::new(); ngroups];
        for i in 0..n {
            self.limits.check()?;
            let t = c.t(i);
            let p = params.get(i).copied().unwrap_or(f64::NAN);
            let mut k = 0usize;
            let mut ratio = 0.0;
            if op == "limit_ratio" {
                if p.is_nan() {
                    return Err(Error::execution("Ratio value is NaN"));
                }
                ratio = p.clamp(-1.0, 1.0);
                if ratio != p {
                    self.annos.warn(format!(
                        "ratio value should be between -1 and 1, got {}, capping to {}",
                        format_float(p),
                        format_float(ratio)
                    ));
                }
            } else {
                if p.is_nan() {
                    return Err(Error::execution("Parameter value is NaN"));
                }
                if !(-9.223_372_036_854_776e18..9.223_372_036_854_776e18).contains(&p) {
                    return Err(Error::execution(format!(
                        "Scalar value {} overflows int64",
                        format_float(p)
                    )));
                }
                let kk = p as i64;
                if kk >= 1 {
                    k = usize::try_from(kk).unwrap_or(usize::MAX);
                }
            }
            members.iter_mut().for_each(Vec::clear);
            for (si, s) in input.iter().enumerate() {
                let cur = &mut cursors[si];
                if *cur < s.points.len() && s.points[*cur].0 == t {
                    members[group_of[si]].push((si, s.points[*cur].1, None));
                    *cur += 1;
                    continue;
                }
                let hcur = &mut hcursors[si];
                if with_hists && *hcur < s.hists.len() && s.hists[*hcur].0 == t {
                    members[group_of[si]].push((si, f64::NAN, Some(*hcur)));
                    *hcur += 1;
                }
            }
            for m in members.iter_mut() {
                let picked: Vec<(usize, f64, Option<usize>)> = match op {
                    "topk" | "bottomk" => {
                        if k == 0 {
                            continue;
                        }
                        let top = op == "topk";
                        // NaN always sorts last (away from the top/bottom).
                        m.sort_by(|a, b| {
                            let (x, y) = (a.1, b.1);
                            match (x.is_nan(), y.is_nan()) {
                                (true, true) => std::cmp::Ordering::Equal,
                                (true, false) => std::cmp::Ordering::Greater,
                                (false, true) => std::cmp::Ordering::Less,
                                _ if top => y.partial_cmp(&x).unwrap_or(std::cmp::Ordering::Equal),
                                _ => x.partial_cmp(&y).unwrap_or(std::cmp::Ordering::Equal),
                            }
                        });
                        m.iter().take(k).copied().collect()
                    }
                    "limitk" => m.iter().take(k).copied().collect(),
                    _ => m
                        .iter()
                        .filter(|(si, _, _)| {
                            let off = ratio_offset(&input[*si].labels);
                            if ratio >= 0.0 {
                                off < ratio
                            } else {
                                off >= 1.0 + ratio
                            }
                        })
                        .copied()
                        .collect(),
                };
                for (si, v, hi) in picked {
                    let slot = &mut out[si];
                    if slot.is_none() {
                        order.push(si);
                        *slot = Some(Series::new(input[si].labels.clone(), input[si].drop_name));
                    }
                    if let Some(s) = slot {
                        match hi {
                            Some(k) => s.hists.push((t, input[si].hists[k].1.clone())),
                            None => s.points.push((t, v)),
                        }
                    }
                }
            }
        }
        Ok(order.into_iter().filter_map(|i| out[i].take()).collect())
    }
}

/// Adds one sample to an accumulator.
fn fold_one(op: FoldOp, a: &mut Acc, f: f64) {
    if !a.seen {
        *a = Acc {
            seen: true,
            count: 1.0,
            value: f,
            comp: 0.0,
            mean: f,
            incremental: false,
        };
        if matches!(op, FoldOp::Stddev | FoldOp::Stdvar) {
            // Welford's first step: NaN/Inf inputs yield NaN.
            a.value = if f.is_finite() { 0.0 } else { f64::NAN };
        }
        return;
    }
    a.count += 1.0;
    match op {
        FoldOp::Sum => (a.value, a.comp) = kahan_inc(f, a.value, a.comp),
        FoldOp::Avg => {
            if !a.incremental {
                let (nv, nc) = kahan_inc(f, a.value, a.comp);
                if !nv.is_infinite() {
                    (a.value, a.comp) = (nv, nc);
                    return;
                }
                a.incremental = true;
                a.mean = a.value / (a.count - 1.0);
                a.comp /= a.count - 1.0;
            }
            let q = (a.count - 1.0) / a.count;
            (a.mean, a.comp) = kahan_inc(f / a.count, q * a.mean, q * a.comp);
        }
        FoldOp::Min => {
            if a.value > f || a.value.is_nan() {
                a.value = f;
            }
        }
        FoldOp::Max => {
            if a.value < f || a.value.is_nan() {
                a.value = f;
            }
        }
        FoldOp::Stddev | FoldOp::Stdvar => {
            let delta = f - a.mean;
            a.mean += delta / a.count;
            a.value += delta * (f - a.mean);
        }
        FoldOp::Count | FoldOp::Group => {}
    }
}

/// The aggregated value of a non-empty accumulator.
fn fold_result(op: FoldOp, a: &Acc) -> f64 {
    match op {
        FoldOp::Sum => a.value + a.comp,
        FoldOp::Avg => {
            if a.incremental {
                a.mean + a.comp
            } else {
                a.value / a.count + a.comp / a.count
            }
        }
        FoldOp::Count => a.count,
        FoldOp::Group => 1.0,
        FoldOp::Min | FoldOp::Max => a.value,
        FoldOp::Stdvar => a.value / a.count,
        FoldOp::Stddev => (a.value / a.count).sqrt(),
    }
}

/// A folding aggregation, resolved once per node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum FoldOp {
    Sum,
    Avg,
    Count,
    Group,
    Min,
    Max,
    Stddev,
    Stdvar,
}

impl FoldOp {
    fn parse(op: &str) -> Result<Self> {
        Ok(match op {
            "sum" => Self::Sum,
            "avg" => Self::Avg,
            "count" => Self::Count,
            "group" => Self::Group,
            "min" => Self::Min,
            "max" => Self::Max,
            "stddev" => Self::Stddev,
            "stdvar" => Self::Stdvar,
            other => {
                return Err(Error::bad_data(format!(
                    "unsupported aggregation operator {other:?}"
                )));
            }
        })
    }
}

/// The group labels of `l` under `m` (all labels fall in one group without a modifier),
/// written into `out`, reusing its buffers.
fn group_key_into(l: &Labels, m: Option<&LabelModifier>, out: &mut Labels) {
    crate::value::filter_labels_into(
        l,
        |p| match m {
            None => false,
            Some(LabelModifier::Include(names)) => names.labels.contains(&p.name),
            Some(LabelModifier::Exclude(names)) => {
                p.name != METRIC_NAME && !names.labels.contains(&p.name)
            }
        },
        out,
    );
}

/// Where a series falls in `[0, 1)` for `limit_ratio`: its label hash scaled down.
fn ratio_offset(l: &Labels) -> f64 {
    crate::functions::xxhash::labels_hash(l) as f64 / u64::MAX as f64
}
