//! Crash points for the crash-safety tests: when `RELCTL_FAILPOINT` names a step, the
//! process dies there at once (no drain, no lease release), as a SIGKILL would leave it.
//! Unset in production, where `hit` is one comparison against a value read once.

use std::sync::OnceLock;

static ARMED: OnceLock<Option<String>> = OnceLock::new();

/// Dies here if `RELCTL_FAILPOINT` names `step`.
pub fn hit(step: &str) {
    let armed = ARMED.get_or_init(|| std::env::var("RELCTL_FAILPOINT").ok());
    if armed.as_deref() == Some(step) {
        eprintln!("{{\"message\":\"failpoint {step}: aborting\"}}");
        std::process::abort();
    }
}
