//! Watching a deployment after it lands: the environment's CloudWatch alarms, read
//! while it bakes (before it counts as succeeded) and while it soaks (before it is
//! promoted onwards).

pub mod alarms;
