//! Layers wrap an `Arc<dyn Backend>` and implement the same trait, so they stack in any order:
//! `metrics(faulty(memory://))`. Each layer's `Display` names itself around its inner backend.

pub mod faulty;
pub mod metrics;
pub mod retry;

pub use faulty::{Fault, FaultRule, FaultyBackend, Op};
pub use metrics::{BackendMetrics, MetricsBackend};
pub use retry::{Retrier, RetryBackend, RetryPolicy};
