//! Crash points for the crash-safety tests: when `RELCTL_FAILPOINT` names a step, the
//! process dies there at once (no drain, no lease release), as a SIGKILL would leave it;
//! when it names `{step}:error`, that step fails once, as a transient AWS error would.
//! Unset in production, where each is one comparison against a value read once.

use std::sync::{
    OnceLock,
    atomic::{AtomicBool, Ordering},
};

static FIRED: AtomicBool = AtomicBool::new(false);

/// True the first time `step` is reached when `RELCTL_FAILPOINT` is `{step}:error`.
pub fn error_once(step: &str) -> bool {
    let armed = ARMED.get_or_init(|| std::env::var("RELCTL_FAILPOINT").ok());
    armed
        .as_deref()
        .and_then(|a| a.strip_suffix(":error"))
        .is_some_and(|a| a == step)
        && !FIRED.swap(true, Ordering::SeqCst)
}

static ARMED: OnceLock<Option<String>> = OnceLock::new();

/// Dies here if `RELCTL_FAILPOINT` names `step`.
pub fn hit(step: &str) {
    let armed = ARMED.get_or_init(|| std::env::var("RELCTL_FAILPOINT").ok());
    if armed.as_deref() == Some(step) {
        eprintln!("{{\"message\":\"failpoint {step}: aborting\"}}");
        std::process::abort();
    }
}
