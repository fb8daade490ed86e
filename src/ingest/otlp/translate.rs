//! OTLP metrics → Prometheus series, appended through an [`Appender`], as Prometheus 3's
//! `otlptranslator` does:
//!
//! ```text
//! Gauge                          → name{attrs}
//! Sum, monotonic, cumulative     → name_total{attrs}            (suffixes per strategy)
//! Sum, non-monotonic, cumulative → name{attrs}                  (a gauge)
//! Histogram, cumulative          → name_bucket{le}, name_sum (when set), name_count
//! ExponentialHistogram, cumul.   → name{attrs} native histogram (see `exphist`)
//! Summary                        → name{quantile}, name_sum, name_count
//! Sum/Histogram/ExpHistogram with delta (or unspecified) temporality → refused
//! resource: job = service.namespace/service.name, instance = service.instance.id,
//!           target_info{job, instance, other resource attributes} = 1 (every 2.5 min from the
//!           resource's earliest to its latest point)
//! ```
//!
//! Data points flagged `NO_RECORDED_VALUE` become stale markers. Start timestamps and
//! exemplars are dropped. Attribute names that collide after escaping are merged, their values
//! joined with `;` in attribute-name order.
#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

use super::exphist::{self, FLAG_NO_RECORDED_VALUE};
use super::names::{self, Kind};
use crate::config::otlp::OtlpConfig;
use crate::ingest::remote_write::{LabelLimits, MAX_FUTURE_MS};
use argus_storage::{Appender, Error as StorageError, ErrorKind, FloatHistogram, Label, Labels};
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::{Metric, ResourceMetrics, metric::Data};
use opentelemetry_proto::tonic::metrics::v1::{
    NumberDataPoint, ScopeMetrics, number_data_point::Value as NumberValue,
};
use std::collections::BTreeMap;

/// How many rejection messages are spelled out.
const MAX_REPORTED: usize = 5;
/// `AGGREGATION_TEMPORALITY_CUMULATIVE`.
const CUMULATIVE: i32 = 2;
/// Interval of `target_info` samples (half of Prometheus's default lookback delta), ms.
const TARGET_INFO_INTERVAL_MS: i64 = 150_000;
/// Most `target_info` samples per resource and request (the latest ones are kept).
const MAX_TARGET_INFO_SAMPLES: i64 = 100;
const SERVICE_NAME: &str = "service.name";
const SERVICE_NAMESPACE: &str = "service.namespace";
const SERVICE_INSTANCE_ID: &str = "service.instance.id";
const IDENTIFYING: [&str; 3] = [SERVICE_NAMESPACE, SERVICE_NAME, SERVICE_INSTANCE_ID];

/// What the translation needs besides the request.
#[derive(Clone, Copy, Debug)]
pub struct Settings<'a> {
    /// The `otlp:` config section.
    pub config: &'a OtlpConfig,
    /// Bounds on each series' labels (the remote-write receiver's flags).
    pub limits: LabelLimits,
    /// Current time, ms (samples more than 10 minutes ahead are refused).
    pub now_ms: i64,
}

/// What happened to one request.
#[derive(Debug, Default, PartialEq)]
pub struct Outcome {
    /// Float samples appended.
    pub samples_written: u64,
    /// Native-histogram samples appended.
    pub histograms_written: u64,
    /// Data points refused by the translation (OTLP `partial_success.rejected_data_points`).
    pub rejected_points: u64,
    /// The first few reasons for `rejected_points`.
    pub messages: Vec<String>,
    /// Samples the storage refused (out of order, too old, …): Prometheus answers 400.
    pub storage_rejected: u64,
    /// The first few storage refusals.
    pub storage_messages: Vec<String>,
}

impl Outcome {
    fn reject_points(&mut self, n: u64, msg: impl FnOnce() -> String) {
        self.rejected_points += n;
        if self.messages.len() < MAX_REPORTED {
            self.messages.push(msg());
        }
    }

    /// The `partial_success.error_message`, when points were refused.
    pub fn partial_message(&self) -> Option<String> {
        (self.rejected_points > 0 || !self.messages.is_empty()).then(|| {
            let mut s = self.messages.join("; ");
            if self.rejected_points > self.messages.len() as u64 {
                s.push_str("; …");
            }
            s
        })
    }

    /// The 400 text when the storage refused samples.
    pub fn storage_error(&self) -> Option<String> {
        (self.storage_rejected > 0).then(|| {
            format!(
                "{} samples rejected by the storage ({} written): {}",
                self.storage_rejected,
                self.samples_written + self.histograms_written,
                self.storage_messages.join("; ")
            )
        })
    }
}

/// Upper bound of the samples `req` translates to (checked before any work, so a small body
/// cannot make the receiver build millions of series).
pub fn output_size(req: &ExportMetricsServiceRequest) -> u64 {
    let mut n: u64 = 0;
    for rm in &req.resource_metrics {
        n += MAX_TARGET_INFO_SAMPLES as u64;
        for m in rm.scope_metrics.iter().flat_map(|s| &s.metrics) {
            n += match &m.data {
                Some(Data::Gauge(g)) => g.data_points.len() as u64,
                Some(Data::Sum(s)) => s.data_points.len() as u64,
                Some(Data::Histogram(h)) => h
                    .data_points
                    .iter()
                    .map(|p| p.explicit_bounds.len() as u64 + 3)
                    .sum(),
                Some(Data::ExponentialHistogram(h)) => h.data_points.len() as u64,
                Some(Data::Summary(s)) => s
                    .data_points
                    .iter()
                    .map(|p| p.quantile_values.len() as u64 + 2)
                    .sum(),
                None => 0,
            };
        }
    }
    n
}

/// An attribute value as a label value (pdata's `AsString`: JSON for arrays and maps, base64
/// for bytes).
pub fn attr_string(v: Option<&AnyValue>) -> String {
    use any_value::Value as V;
    match v.and_then(|v| v.value.as_ref()) {
        None => String::new(),
        Some(V::StringValue(s)) => s.clone(),
        Some(V::BoolValue(b)) => b.to_string(),
        Some(V::IntValue(i)) => i.to_string(),
        Some(V::DoubleValue(d)) => format_double(*d),
        Some(V::BytesValue(b)) => {
            use base64::Engine;
            base64::engine::general_purpose::STANDARD.encode(b)
        }
        Some(V::ArrayValue(_) | V::KvlistValue(_)) => json_of(v).to_string(),
        Some(V::StringValueStrindex(i)) => i.to_string(),
    }
}

/// A double as pdata prints it (ES6 number formatting: exponent below 1e-6 and from 1e21).
fn format_double(d: f64) -> String {
    let a = d.abs();
    if a != 0.0 && !(1e-6..1e21).contains(&a) && d.is_finite() {
        let s = format!("{d:e}");
        match s.split_once('e') {
            Some((m, e)) if !e.starts_with('-') => format!("{m}e+{e}"),
            _ => s,
        }
    } else {
        format!("{d}")
    }
}

fn json_of(v: Option<&AnyValue>) -> serde_json::Value {
    use any_value::Value as V;
    use serde_json::Value as J;
    match v.and_then(|v| v.value.as_ref()) {
        None => J::Null,
        Some(V::StringValue(s)) => J::from(s.as_str()),
        Some(V::BoolValue(b)) => J::from(*b),
        Some(V::IntValue(i)) => J::from(*i),
        Some(V::DoubleValue(d)) => J::from(*d),
        Some(V::ArrayValue(a)) => J::Array(a.values.iter().map(|x| json_of(Some(x))).collect()),
        Some(V::KvlistValue(kv)) => J::Object(
            kv.values
                .iter()
                .map(|e| (e.key.clone(), json_of(e.value.as_ref())))
                .collect(),
        ),
        Some(_) => J::from(attr_string(v)),
    }
}

fn find<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a KeyValue> {
    attrs.iter().find(|kv| kv.key == key)
}

/// Per-resource label context.
struct Resource<'a> {
    attrs: &'a [KeyValue],
    job: Option<String>,
    instance: Option<String>,
}

impl<'a> Resource<'a> {
    fn new(rm: &'a ResourceMetrics) -> Self {
        let attrs = rm.resource.as_ref().map_or(&[][..], |r| &r.attributes[..]);
        let job = find(attrs, SERVICE_NAME).map(|n| {
            let name = attr_string(n.value.as_ref());
            match find(attrs, SERVICE_NAMESPACE) {
                Some(ns) => format!("{}/{name}", attr_string(ns.value.as_ref())),
                None => name,
            }
        });
        let instance = find(attrs, SERVICE_INSTANCE_ID).map(|i| attr_string(i.value.as_ref()));
        Self {
            attrs,
            job,
            instance,
        }
    }
}

/// Labels shared by every series of a data point (`createAttributes`): the point's
/// attributes (escaped, colliding names merged), then promoted resource attributes the point
/// does not have, scope labels, `job` and `instance`.
fn base_labels(
    s: &Settings<'_>,
    res: &Resource<'_>,
    attrs: &[KeyValue],
    scope: Option<&ScopeMetrics>,
    ignore: &[&str],
) -> Result<BTreeMap<String, String>, String> {
    let cfg = s.config;
    let strategy = cfg.translation_strategy;
    let mut sorted: Vec<&KeyValue> = attrs
        .iter()
        .filter(|kv| !ignore.contains(&kv.key.as_str()))
        .collect();
    sorted.sort_by(|a, b| a.key.cmp(&b.key));
    let mut l: BTreeMap<String, String> = BTreeMap::new();
    for kv in sorted {
        let name = names::label_name(&kv.key, strategy)?;
        let value = attr_string(kv.value.as_ref());
        match l.get_mut(&name) {
            Some(v) => {
                v.push(';');
                v.push_str(&value);
            }
            None => {
                l.insert(name, value);
            }
        }
    }
    let promote = |key: &str| {
        if cfg.promote_all_resource_attributes {
            !cfg.ignore_resource_attributes.iter().any(|a| a == key)
        } else {
            cfg.promote_resource_attributes.iter().any(|a| a == key)
        }
    };
    for kv in res.attrs.iter().filter(|kv| promote(&kv.key)) {
        let name = names::label_name(&kv.key, strategy)?;
        l.entry(name)
            .or_insert_with(|| attr_string(kv.value.as_ref()));
    }
    if cfg.promote_scope_metadata
        && let Some(sm) = scope
        && let Some(sc) = sm.scope.as_ref().filter(|sc| !sc.name.is_empty())
    {
        l.insert("otel_scope_name".into(), sc.name.clone());
        l.insert("otel_scope_version".into(), sc.version.clone());
        l.insert("otel_scope_schema_url".into(), sm.schema_url.clone());
        for kv in &sc.attributes {
            let name = names::label_name(&format!("otel_scope_{}", kv.key), strategy)?;
            l.insert(name, attr_string(kv.value.as_ref()));
        }
    }
    if let Some(job) = &res.job {
        l.insert("job".into(), job.clone());
    }
    if let Some(instance) = &res.instance {
        l.insert("instance".into(), instance.clone());
    }
    Ok(l)
}

/// The full label set of one series, checked against the bounds.
fn series_labels(
    lim: &LabelLimits,
    base: &BTreeMap<String, String>,
    name: &str,
    extra: Option<(&str, &str)>,
) -> Result<Labels, String> {
    let mut pairs: Vec<Label> = base
        .iter()
        .map(|(k, v)| Label::new(k.as_str(), v.as_str()))
        .collect();
    if let Some((k, v)) = extra {
        pairs.push(Label::new(k, v));
    }
    pairs.push(Label::new(argus_storage::METRIC_NAME, name));
    let labels = Labels::new(pairs);
    let over = |n: usize, limit: usize| limit != 0 && n > limit;
    if over(labels.len(), lim.max_labels) {
        return Err(format!(
            "series {name:?} has {} labels, more than the limit of {} \
             (--storage.remote-write.max-labels-per-series)",
            labels.len(),
            lim.max_labels
        ));
    }
    for l in &labels {
        if over(l.name.len(), lim.max_name_len) {
            return Err(format!(
                "label name of {name:?} is {} bytes long, more than the limit of {} \
                 (--storage.remote-write.max-label-name-length)",
                l.name.len(),
                lim.max_name_len
            ));
        }
        if over(l.value.len(), lim.max_value_len) {
            return Err(format!(
                "value of label {:?} of {name:?} is {} bytes long, more than the limit of {} \
                 (--storage.remote-write.max-label-value-length)",
                l.name,
                l.value.len(),
                lim.max_value_len
            ));
        }
    }
    Ok(labels)
}

/// The appending side: label building, bounds, storage calls, counting.
struct Writer<'a, 's> {
    app: &'a mut dyn Appender,
    s: &'a Settings<'s>,
    out: Outcome,
    max_t: i64,
}

/// One series of a data point, before appending.
enum Value {
    Float(f64),
    Histogram(Box<FloatHistogram>),
}

impl Writer<'_, '_> {
    /// Appends the series of one data point; a storage refusal is counted, other storage
    /// failures end the request.
    fn write(&mut self, t: i64, series: Vec<(Labels, Value)>) -> Result<(), StorageError> {
        for (labels, v) in series {
            let res = if t > self.max_t {
                Err(StorageError::OutOfBounds)
            } else {
                match &v {
                    Value::Float(f) => self.app.append(None, &labels, t, *f),
                    Value::Histogram(h) => self.app.append_histogram(None, &labels, t, h),
                }
            };
            match res {
                Ok(_) => match v {
                    Value::Float(_) => self.out.samples_written += 1,
                    Value::Histogram(_) => self.out.histograms_written += 1,
                },
                Err(e) if e.kind() == ErrorKind::BadData => {
                    self.out.storage_rejected += 1;
                    if self.out.storage_messages.len() < MAX_REPORTED {
                        self.out
                            .storage_messages
                            .push(format!("{e} for series {labels} at {t}"));
                    }
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    fn metric(
        &mut self,
        res: &Resource<'_>,
        sm: &ScopeMetrics,
        m: &Metric,
        times: &mut (i64, i64),
    ) -> Result<(), StorageError> {
        let strategy = self.s.config.translation_strategy;
        let (kind, points, temporality) = match &m.data {
            None => {
                self.out.reject_points(0, || {
                    format!("unsupported metric type for metric {:?}", m.name)
                });
                return Ok(());
            }
            Some(Data::Gauge(g)) => (Kind::Gauge, g.data_points.len(), CUMULATIVE),
            Some(Data::Sum(s)) => (
                if s.is_monotonic {
                    Kind::Counter
                } else {
                    Kind::UpDownCounter
                },
                s.data_points.len(),
                s.aggregation_temporality,
            ),
            Some(Data::Histogram(h)) => (
                Kind::Histogram,
                h.data_points.len(),
                h.aggregation_temporality,
            ),
            Some(Data::ExponentialHistogram(h)) => (
                Kind::Histogram,
                h.data_points.len(),
                h.aggregation_temporality,
            ),
            Some(Data::Summary(s)) => (Kind::Summary, s.data_points.len(), CUMULATIVE),
        };
        if temporality != CUMULATIVE {
            self.out.reject_points(points as u64, || {
                format!(
                    "invalid temporality and type combination for metric {:?} \
                     (only cumulative sums and histograms are accepted)",
                    m.name
                )
            });
            return Ok(());
        }
        let name = match names::metric_name(&m.name, &m.unit, kind, strategy) {
            Ok(n) => n,
            Err(e) => {
                self.out.reject_points(points as u64, || e);
                return Ok(());
            }
        };
        let stale = |flags: u32| flags & FLAG_NO_RECORDED_VALUE != 0;
        let mut see = |t: i64| {
            times.0 = times.0.min(t);
            times.1 = times.1.max(t);
        };
        let to_ms = |ns: u64| (ns / 1_000_000) as i64;
        match &m.data {
            Some(Data::Gauge(g)) => self.numbers(res, sm, &name, &g.data_points, &mut see),
            Some(Data::Sum(s)) => self.numbers(res, sm, &name, &s.data_points, &mut see),
            Some(Data::Histogram(h)) => {
                for p in &h.data_points {
                    let t = to_ms(p.time_unix_nano);
                    see(t);
                    let built = (|| {
                        let base = base_labels(self.s, res, &p.attributes, Some(sm), &[])?;
                        let v = |x: f64| {
                            Value::Float(if stale(p.flags) {
                                argus_storage::stale_nan()
                            } else {
                                x
                            })
                        };
                        let mut series = Vec::with_capacity(p.explicit_bounds.len() + 3);
                        if let Some(sum) = p.sum {
                            series.push((
                                series_labels(&self.s.limits, &base, &format!("{name}_sum"), None)?,
                                v(sum),
                            ));
                        }
                        let count_name = format!("{name}_count");
                        series.push((
                            series_labels(&self.s.limits, &base, &count_name, None)?,
                            v(p.count as f64),
                        ));
                        let bucket = format!("{name}_bucket");
                        let mut cumulative: u64 = 0;
                        for (bound, c) in p.explicit_bounds.iter().zip(&p.bucket_counts) {
                            cumulative = cumulative.saturating_add(*c);
                            let le = names::format_bound(*bound);
                            let l =
                                series_labels(&self.s.limits, &base, &bucket, Some(("le", &le)))?;
                            series.push((l, v(cumulative as f64)));
                        }
                        let l =
                            series_labels(&self.s.limits, &base, &bucket, Some(("le", "+Inf")))?;
                        series.push((l, v(p.count as f64)));
                        Ok::<_, String>(series)
                    })();
                    match built {
                        Ok(series) => self.write(t, series)?,
                        Err(e) => self.out.reject_points(1, || e),
                    }
                }
                Ok(())
            }
            Some(Data::ExponentialHistogram(h)) => {
                for p in &h.data_points {
                    let t = to_ms(p.time_unix_nano);
                    see(t);
                    let built = exphist::to_native(p, false).and_then(|hist| {
                        let base = base_labels(self.s, res, &p.attributes, Some(sm), &[])?;
                        let l = series_labels(&self.s.limits, &base, &name, None)?;
                        Ok(vec![(l, Value::Histogram(Box::new(hist)))])
                    });
                    match built {
                        Ok(series) => self.write(t, series)?,
                        Err(e) => self
                            .out
                            .reject_points(1, || format!("metric {:?}: {e}", m.name)),
                    }
                }
                Ok(())
            }
            Some(Data::Summary(s)) => {
                for p in &s.data_points {
                    let t = to_ms(p.time_unix_nano);
                    see(t);
                    let built = (|| {
                        let base = base_labels(self.s, res, &p.attributes, Some(sm), &[])?;
                        let v = |x: f64| {
                            Value::Float(if stale(p.flags) {
                                argus_storage::stale_nan()
                            } else {
                                x
                            })
                        };
                        let mut series = Vec::with_capacity(p.quantile_values.len() + 2);
                        series.push((
                            series_labels(&self.s.limits, &base, &format!("{name}_sum"), None)?,
                            v(p.sum),
                        ));
                        series.push((
                            series_labels(&self.s.limits, &base, &format!("{name}_count"), None)?,
                            v(p.count as f64),
                        ));
                        for q in &p.quantile_values {
                            let qs = names::format_bound(q.quantile);
                            let l = series_labels(
                                &self.s.limits,
                                &base,
                                &name,
                                Some(("quantile", &qs)),
                            )?;
                            series.push((l, v(q.value)));
                        }
                        Ok::<_, String>(series)
                    })();
                    match built {
                        Ok(series) => self.write(t, series)?,
                        Err(e) => self.out.reject_points(1, || e),
                    }
                }
                Ok(())
            }
            None => Ok(()),
        }
    }

    fn numbers(
        &mut self,
        res: &Resource<'_>,
        sm: &ScopeMetrics,
        name: &str,
        points: &[NumberDataPoint],
        see: &mut impl FnMut(i64),
    ) -> Result<(), StorageError> {
        for p in points {
            let t = (p.time_unix_nano / 1_000_000) as i64;
            see(t);
            let v = if p.flags & FLAG_NO_RECORDED_VALUE != 0 {
                argus_storage::stale_nan()
            } else {
                match p.value {
                    Some(NumberValue::AsDouble(d)) => d,
                    Some(NumberValue::AsInt(i)) => i as f64,
                    None => 0.0,
                }
            };
            let built = base_labels(self.s, res, &p.attributes, Some(sm), &[])
                .and_then(|base| series_labels(&self.s.limits, &base, name, None));
            match built {
                Ok(l) => self.write(t, vec![(l, Value::Float(v))])?,
                Err(e) => self.out.reject_points(1, || e),
            }
        }
        Ok(())
    }

    /// `target_info` of a resource with non-identifying attributes and a `job` or `instance`.
    fn target_info(
        &mut self,
        res: &Resource<'_>,
        earliest: i64,
        latest: i64,
    ) -> Result<(), StorageError> {
        let identifying = res
            .attrs
            .iter()
            .filter(|kv| IDENTIFYING.contains(&kv.key.as_str()))
            .count();
        if res.attrs.len() == identifying || (res.job.is_none() && res.instance.is_none()) {
            return Ok(());
        }
        let ignore: &[&str] = if self.s.config.keep_identifying_resource_attributes {
            &[]
        } else {
            &IDENTIFYING
        };
        let no_promotion = OtlpConfig {
            promote_scope_metadata: false,
            promote_all_resource_attributes: false,
            promote_resource_attributes: Vec::new(),
            ignore_resource_attributes: Vec::new(),
            ..self.s.config.clone()
        };
        let settings = Settings {
            config: &no_promotion,
            ..*self.s
        };
        let labels = base_labels(&settings, res, res.attrs, None, ignore)
            .and_then(|base| series_labels(&self.s.limits, &base, "target_info", None));
        let labels = match labels {
            Ok(l) => l,
            Err(e) => {
                self.out.reject_points(0, || format!("target_info: {e}"));
                return Ok(());
            }
        };
        let first = earliest.max(latest - (MAX_TARGET_INFO_SAMPLES - 1) * TARGET_INFO_INTERVAL_MS);
        let mut t = first;
        while t < latest {
            self.write(t, vec![(labels.clone(), Value::Float(1.0))])?;
            t += TARGET_INFO_INTERVAL_MS;
        }
        self.write(latest, vec![(labels, Value::Float(1.0))])
    }
}

/// Translates every resource of `req` and appends the result to `app` without committing.
/// Returns the outcome, or the first storage failure that is not a per-sample refusal (the
/// caller rolls back and answers 500).
pub fn append(
    app: &mut dyn Appender,
    req: &ExportMetricsServiceRequest,
    s: &Settings<'_>,
) -> Result<Outcome, StorageError> {
    let mut w = Writer {
        app,
        s,
        out: Outcome::default(),
        max_t: s.now_ms.saturating_add(MAX_FUTURE_MS),
    };
    for rm in &req.resource_metrics {
        let res = Resource::new(rm);
        let mut times = (i64::MAX, i64::MIN);
        for sm in &rm.scope_metrics {
            for m in &sm.metrics {
                w.metric(&res, sm, m, &mut times)?;
            }
        }
        if times.0 <= times.1 {
            w.target_info(&res, times.0, times.1)?;
        }
    }
    Ok(w.out)
}
