//! Creating a metric and registering it in one step.

use prometheus::{IntGauge, Registry};

/// Creates metrics and registers them. A name registered twice or an invalid name is a bug in
/// this module (the unit tests build every metric), so those panic with the name.
pub(super) struct Register<'a>(pub(super) &'a Registry);

impl Register<'_> {
    pub(super) fn collector(&self, c: impl prometheus::core::Collector + 'static) {
        self.0.register(Box::new(c)).expect("metric registers");
    }

    pub(super) fn counter(&self, name: &str, help: &str) -> prometheus::IntCounter {
        let c = prometheus::IntCounter::new(name, help).expect("valid counter");
        self.collector(c.clone());
        c
    }

    pub(super) fn float_counter(&self, name: &str, help: &str) -> prometheus::Counter {
        let c = prometheus::Counter::new(name, help).expect("valid counter");
        self.collector(c.clone());
        c
    }

    pub(super) fn counters(
        &self,
        name: &str,
        help: &str,
        labels: &[&str],
    ) -> prometheus::IntCounterVec {
        let c = prometheus::IntCounterVec::new(prometheus::Opts::new(name, help), labels)
            .expect("valid counter");
        self.collector(c.clone());
        c
    }

    pub(super) fn gauge(&self, name: &str, help: &str) -> IntGauge {
        let g = IntGauge::new(name, help).expect("valid gauge");
        self.collector(g.clone());
        g
    }

    pub(super) fn gauges(
        &self,
        name: &str,
        help: &str,
        labels: &[&str],
    ) -> prometheus::IntGaugeVec {
        let g = prometheus::IntGaugeVec::new(prometheus::Opts::new(name, help), labels)
            .expect("valid gauge");
        self.collector(g.clone());
        g
    }

    pub(super) fn histogram(
        &self,
        name: &str,
        help: &str,
        buckets: &[f64],
    ) -> prometheus::Histogram {
        let opts = prometheus::HistogramOpts::new(name, help).buckets(buckets.to_vec());
        let h = prometheus::Histogram::with_opts(opts).expect("valid histogram");
        self.collector(h.clone());
        h
    }

    pub(super) fn histograms(
        &self,
        name: &str,
        help: &str,
        buckets: &[f64],
        labels: &[&str],
    ) -> prometheus::HistogramVec {
        let opts = prometheus::HistogramOpts::new(name, help).buckets(buckets.to_vec());
        let h = prometheus::HistogramVec::new(opts, labels).expect("valid histogram");
        self.collector(h.clone());
        h
    }
}
