//! Stream records whose intake failed: the shard never waits on one of them. A failed
//! record is set aside here and the shard moves on at once (its checkpoint passes it;
//! the resync still covers its environments if this process dies first). It is tried
//! again with backoff; after [`ATTEMPTS`], or at once when no retry can help (an item
//! too large to take `last_date_deployed`, say), it is *parked*: recorded in the state
//! table (`parked#{table}#{sequence}`), counted (`relctl_parked_records_total`) and
//! logged as an error naming the release, and let go.

use std::time::Duration;

use aws_sdk_dynamodbstreams::types::Record;
use tokio::time::Instant;

use crate::aws::ErrorClass;

/// Tries before a record is parked.
pub const ATTEMPTS: u32 = 5;

/// One record waiting to be tried again.
#[derive(Debug, Clone)]
pub struct Retry {
    pub sequence: String,
    pub record: Record,
    pub attempts: u32,
    pub due: Instant,
    pub error: String,
}

/// What to do after a failed try.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// Try again at this time.
    RetryAt(Instant),
    /// Give up: park it.
    Park,
}

/// After the `attempts`-th failure of class `class` at `now`.
pub fn next(attempts: u32, class: ErrorClass, now: Instant) -> Next {
    if class == ErrorClass::Permanent || attempts >= ATTEMPTS {
        return Next::Park;
    }
    let delay = Duration::from_secs(1 << attempts.saturating_sub(1).min(6));
    Next::RetryAt(now + delay)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_back_off_then_park_and_permanent_ones_park_at_once() {
        let now = Instant::now();
        assert_eq!(
            next(1, ErrorClass::Transient, now),
            Next::RetryAt(now + Duration::from_secs(1))
        );
        assert_eq!(
            next(3, ErrorClass::Throttled, now),
            Next::RetryAt(now + Duration::from_secs(4))
        );
        assert_eq!(next(ATTEMPTS, ErrorClass::Transient, now), Next::Park);
        assert_eq!(next(1, ErrorClass::Permanent, now), Next::Park);
    }
}
