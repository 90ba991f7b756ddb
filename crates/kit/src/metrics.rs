//! Registering Prometheus metrics on a registry handed in at build time. Each domain defines
//! its own metric set and registers it through a [`Registrar`]; nothing registers on a
//! global, so a test builds its own registry and two gateways in one process never share
//! counters.

use prometheus::{
    Gauge, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
};

/// Buckets of latency histograms, in seconds: 0.5 ms to 30 s.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Buckets of byte-size histograms: 1 KiB to 256 MiB in powers of four.
pub const BYTE_BUCKETS: &[f64] = &[
    1024.0,
    4096.0,
    16384.0,
    65536.0,
    262144.0,
    1048576.0,
    4194304.0,
    16777216.0,
    67108864.0,
    268435456.0,
];

/// Makes metrics and registers each on one registry. Names and labels are the code's own
/// constants: a malformed or twice-registered name is a programming error, found by every
/// test that builds the metric set, so it panics.
#[derive(Clone, Copy)]
pub struct Registrar<'a>(pub &'a Registry);

impl Registrar<'_> {
    fn register<M: prometheus::core::Collector + Clone + 'static>(&self, metric: M) -> M {
        self.0
            .register(Box::new(metric.clone()))
            .expect("metric registered once");
        metric
    }

    /// A counter with labels.
    pub fn counter(&self, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
        self.register(
            IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric definition"),
        )
    }

    /// A counter without labels.
    pub fn plain_counter(&self, name: &str, help: &str) -> prometheus::IntCounter {
        self.register(prometheus::IntCounter::new(name, help).expect("valid metric definition"))
    }

    /// A gauge with labels.
    pub fn gauge(&self, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
        self.register(
            IntGaugeVec::new(Opts::new(name, help), labels).expect("valid metric definition"),
        )
    }

    /// A gauge without labels.
    pub fn plain_gauge(&self, name: &str, help: &str) -> IntGauge {
        self.register(IntGauge::new(name, help).expect("valid metric definition"))
    }

    /// A gauge of a fraction or other non-integer value, without labels.
    pub fn ratio_gauge(&self, name: &str, help: &str) -> Gauge {
        self.register(Gauge::new(name, help).expect("valid metric definition"))
    }

    /// A latency histogram (seconds, [`LATENCY_BUCKETS`]).
    pub fn histogram(&self, name: &str, help: &str, labels: &[&str]) -> HistogramVec {
        self.buckets(name, help, labels, LATENCY_BUCKETS)
    }

    /// A size histogram (bytes, [`BYTE_BUCKETS`]).
    pub fn bytes_histogram(&self, name: &str, help: &str, labels: &[&str]) -> HistogramVec {
        self.buckets(name, help, labels, BYTE_BUCKETS)
    }

    fn buckets(&self, name: &str, help: &str, labels: &[&str], buckets: &[f64]) -> HistogramVec {
        self.register(
            HistogramVec::new(
                HistogramOpts::new(name, help).buckets(buckets.to_vec()),
                labels,
            )
            .expect("valid metric definition"),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_land_on_the_registry_handed_in() {
        let registry = Registry::new();
        let r = Registrar(&registry);
        r.counter("a_total", "A.", &["x"])
            .with_label_values(&["1"])
            .inc();
        r.plain_gauge("b", "B.").set(3);
        r.bytes_histogram("c_bytes", "C.", &[])
            .with_label_values(&[] as &[&str])
            .observe(2048.0);
        let names: Vec<String> = registry
            .gather()
            .iter()
            .map(|f| f.name().to_string())
            .collect();
        assert_eq!(names, ["a_total", "b", "c_bytes"]);
        // Another registry is another world: the same names register again.
        let other = Registry::new();
        Registrar(&other).counter("a_total", "A.", &["x"]);
    }
}
