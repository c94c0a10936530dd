//! ballast-sim: a deterministic discrete-event twin of Amazon ECS (EC2 launch type).
pub mod catalogue;
pub mod scenario;
