//! `alga:extension/metrics` (an alga-lambda addition): counters, gauges and
//! histograms with up to 5 dimensions, written as CloudWatch EMF after the
//! invocation (see [`crate::emf`]).
//!
//! Always available, like logging (no capability: metrics only describe the
//! extension's own work). Bounded per invocation: past the bound values are
//! dropped and counted (`GuestMetricsDropped`), the guest carries on. Calls do not
//! spend the host-call budget, so a metrics flood cannot turn into a trap; the
//! deadline and fuel still bound it.

use super::HostState;
use super::bindings::alga::extension::metrics::{self, Dimension, MetricUnit};
use super::logging::LogLevel;
use crate::emf::{Kind, MetricRejected, Unit};

fn unit(u: MetricUnit) -> Unit {
    match u {
        MetricUnit::None => Unit::None,
        MetricUnit::Count => Unit::Count,
        MetricUnit::Milliseconds => Unit::Milliseconds,
        MetricUnit::Seconds => Unit::Seconds,
        MetricUnit::Bytes => Unit::Bytes,
        MetricUnit::Kilobytes => Unit::Kilobytes,
        MetricUnit::Megabytes => Unit::Megabytes,
        MetricUnit::Percent => Unit::Percent,
    }
}

impl HostState {
    fn record_metric(
        &mut self,
        kind: Kind,
        name: String,
        value: f64,
        unit: Unit,
        dimensions: Vec<Dimension>,
    ) {
        let dims = dimensions.into_iter().map(|d| (d.name, d.value)).collect();
        match self.metrics.record(kind, &name, value, unit, dims) {
            Ok(()) => {}
            // Noted once per reason, so a flood does not also flood the log.
            Err(MetricRejected::OverBound) if !self.metrics_noted.0 => {
                self.metrics_noted.0 = true;
                self.logs.note(
                    LogLevel::Warn,
                    "metrics: bound reached, further values are dropped".into(),
                );
            }
            Err(e @ MetricRejected::Invalid(_)) if !self.metrics_noted.1 => {
                self.metrics_noted.1 = true;
                self.logs.note(LogLevel::Warn, format!("metrics: {e}"));
            }
            Err(_) => {}
        }
    }
}

impl metrics::Host for HostState {
    async fn counter(
        &mut self,
        name: String,
        value: f64,
        dimensions: Vec<Dimension>,
    ) -> wasmtime::Result<()> {
        self.record_metric(Kind::Counter, name, value, Unit::Count, dimensions);
        Ok(())
    }

    async fn gauge(
        &mut self,
        name: String,
        value: f64,
        u: MetricUnit,
        dimensions: Vec<Dimension>,
    ) -> wasmtime::Result<()> {
        self.record_metric(Kind::Gauge, name, value, unit(u), dimensions);
        Ok(())
    }

    async fn histogram(
        &mut self,
        name: String,
        value: f64,
        u: MetricUnit,
        dimensions: Vec<Dimension>,
    ) -> wasmtime::Result<()> {
        self.record_metric(Kind::Histogram, name, value, unit(u), dimensions);
        Ok(())
    }
}
