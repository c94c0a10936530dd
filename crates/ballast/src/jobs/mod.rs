//! The jobs ballast runs against a cluster. Each takes an [`crate::exec::Exec`] and a
//! validated configuration; none knows which backend is behind it.

pub mod autoscale;
pub mod rebalance;
pub mod spot;
