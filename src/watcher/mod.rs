//! DynamoDB Streams → intents. One watcher per releases table: it walks the stream's
//! shards (closed parents before children), polls each open shard no faster than
//! `controller.poll_interval`, hands every changed release to the intake, and
//! checkpoints the last processed sequence number per shard in the state table, so a
//! restart resumes after it. Expired iterators are re-opened from the checkpoint;
//! trimmed data (an outage past the 24 h retention) triggers a full resync.

pub mod retry;
pub mod shards;

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    sync::Arc,
    time::Duration,
};

use aws_sdk_dynamodbstreams::{
    Client,
    types::{OperationType, Record, ShardIteratorType},
};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use crate::{
    context::Context,
    intake,
    metrics::TableLabels,
    model::EnvKey,
    queue::Priority,
    store::{StoreError, releases::decode, state::Checkpoint},
};
use shards::{Shard, StartAt};

#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    #[error(
        "table {table} has no stream; run `relctl setup` to turn on its NEW_AND_OLD_IMAGES stream"
    )]
    NoStream { table: String },
    #[error("failed to {op} for table {table}: {source}")]
    Aws {
        op: &'static str,
        table: String,
        #[source]
        source: crate::aws::AwsError,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// How often the shard list is re-read to find children of closed shards.
const SHARD_REFRESH: Duration = Duration::from_secs(10);
/// How often moved checkpoints are saved, at most (and always when the watcher stops or
/// a shard is read to its end). Between saves a crash replays a few seconds of records,
/// which intake takes in again without effect; saving after every poll that read
/// something would cost a state write per deployment write, relctl's own included.
const CHECKPOINT_EVERY: Duration = Duration::from_secs(5);

pub struct Watcher {
    ctx: Arc<Context>,
    streams: Client,
    table: String,
    stream_arn: String,
    checkpoints: BTreeMap<String, Checkpoint>,
    shards: Vec<Shard>,
    iterators: HashMap<String, String>,
    /// Records whose intake failed, to be tried again (never blocking their shard).
    retrying: Vec<retry::Retry>,
    first_start: bool,
    /// Records asked for per GetRecords call: halved when a read times out (an
    /// emulator, or a throttled endpoint, that cannot answer a full page in time: the
    /// answer thrown away is work done for nothing), doubled back after reads that
    /// come in time.
    page: Page,
}

/// The GetRecords page size, adapting to how much the endpoint answers in time.
#[derive(Debug, Clone, Copy)]
struct Page {
    limit: i32,
    in_time: u32,
}

impl Page {
    const MAX: i32 = 1000;
    const MIN: i32 = 25;

    fn timed_out(&mut self) {
        self.limit = (self.limit / 2).max(Self::MIN);
        self.in_time = 0;
    }

    fn answered(&mut self) {
        self.in_time += 1;
        if self.in_time >= 8 && self.limit < Self::MAX {
            self.limit = (self.limit * 2).min(Self::MAX);
            self.in_time = 0;
        }
    }
}

/// The table's stream ARN, or why there is none.
pub async fn stream_arn(
    dynamodb: &aws_sdk_dynamodb::Client,
    table: &str,
) -> Result<String, WatchError> {
    let described = crate::store::setup::describe(dynamodb, table).await?;
    let enabled = described
        .as_ref()
        .and_then(|t| t.stream_specification())
        .is_some_and(|s| s.stream_enabled());
    described
        .and_then(|t| t.latest_stream_arn)
        .filter(|_| enabled)
        .ok_or_else(|| WatchError::NoStream {
            table: table.to_owned(),
        })
}

impl Watcher {
    /// `from_start`: read shards relctl has no checkpoint for from their start rather
    /// than from LATEST; for a table that became usable while the controller ran, whose
    /// stream holds nothing relctl has seen.
    pub async fn new(
        ctx: Arc<Context>,
        streams: Client,
        table: String,
        stream_arn: String,
        from_start: bool,
    ) -> Result<Self, WatchError> {
        let checkpoints = ctx.state.checkpoints(&stream_arn).await?;
        let mut watcher = Self {
            first_start: checkpoints.is_empty() && !from_start,
            ctx,
            streams,
            table,
            stream_arn,
            checkpoints,
            shards: Vec::new(),
            iterators: HashMap::new(),
            retrying: Vec::new(),
            page: Page {
                limit: Page::MAX,
                in_time: 0,
            },
        };
        watcher.prime().await?;
        Ok(watcher)
    }

    /// Opens an iterator on every readable shard before the start-up resync reads the
    /// table: whatever is written after this is on the stream, whatever before is in
    /// the table, so nothing falls between the two.
    async fn prime(&mut self) -> Result<(), WatchError> {
        self.shards = self.describe().await?;
        let readable: Vec<Shard> = shards::readable(&self.shards, &self.checkpoints)
            .into_iter()
            .cloned()
            .collect();
        for shard in readable {
            let iterator = self.iterator(&shard).await?;
            self.iterators.insert(shard.id.clone(), iterator);
        }
        self.first_start = false;
        Ok(())
    }

    pub async fn run(mut self, cancel: CancellationToken) {
        let poll = self.ctx.config.controller.poll_interval;
        let mut shards = std::mem::take(&mut self.shards);
        let mut refreshed: Option<Instant> = Some(Instant::now());
        let mut saved = self.checkpoints.clone();
        let mut saved_at = Instant::now();
        info!(table = %self.table, stream = %self.stream_arn, "watching stream");
        while !cancel.is_cancelled() {
            let round = Instant::now();
            if refreshed.is_none_or(|at| at.elapsed() >= SHARD_REFRESH) {
                match self.describe().await {
                    Ok(listed) => {
                        shards = listed;
                        shards::prune(&mut self.checkpoints, &shards);
                        refreshed = Some(round);
                    }
                    Err(error) => warn!(%error, "failed to list stream shards"),
                }
            }
            let readable: Vec<Shard> = shards::readable(&shards, &self.checkpoints)
                .into_iter()
                .cloned()
                .collect();
            for shard in &readable {
                if self.poll_shard(shard).await {
                    refreshed = None; // a shard closed: look for its children now
                }
            }
            if !self.retrying.is_empty() {
                let keys = self.retry_due().await;
                self.schedule(keys);
            }
            let finished = self
                .checkpoints
                .iter()
                .any(|(id, c)| c.finished && !saved.get(id).is_some_and(|s| s.finished));
            if self.checkpoints != saved && (finished || saved_at.elapsed() >= CHECKPOINT_EVERY) {
                self.save_checkpoints(&mut saved, &mut saved_at).await;
            }
            tokio::select! {
                _ = tokio::time::sleep_until(round + poll) => {}
                _ = cancel.cancelled() => {}
            }
        }
        if self.checkpoints != saved {
            self.save_checkpoints(&mut saved, &mut saved_at).await;
        }
        debug!(table = %self.table, "watcher stopped");
    }

    /// Saves the checkpoints; `saved` and `saved_at` follow only when the write landed.
    async fn save_checkpoints(
        &self,
        saved: &mut BTreeMap<String, Checkpoint>,
        saved_at: &mut Instant,
    ) {
        let now = self.ctx.now();
        let result = self
            .ctx
            .state
            .save_checkpoints(&self.stream_arn, &self.checkpoints, now)
            .await;
        let outcome = if result.is_ok() { "ok" } else { "error" };
        self.ctx
            .metrics
            .writes
            .get_or_create(&crate::metrics::WriteLabels {
                target: "checkpoint",
                outcome,
            })
            .inc();
        match result {
            Ok(()) => {
                saved.clone_from(&self.checkpoints);
                *saved_at = Instant::now();
            }
            Err(error) => warn!(%error, "failed to save stream checkpoints"),
        }
    }

    async fn describe(&self) -> Result<Vec<Shard>, WatchError> {
        let mut shards = Vec::new();
        let mut start = None;
        loop {
            let output = self
                .streams
                .describe_stream()
                .stream_arn(&self.stream_arn)
                .set_exclusive_start_shard_id(start)
                .send()
                .await
                .map_err(|e| self.aws("DescribeStream", e))?;
            let Some(description) = output.stream_description else {
                return Ok(shards);
            };
            for shard in description.shards.unwrap_or_default() {
                let Some(id) = shard.shard_id else { continue };
                let closed = shard
                    .sequence_number_range
                    .is_some_and(|r| r.ending_sequence_number.is_some());
                shards.push(Shard {
                    id,
                    parent: shard.parent_shard_id,
                    closed,
                });
            }
            match description.last_evaluated_shard_id {
                Some(last) => start = Some(last),
                None => return Ok(shards),
            }
        }
    }

    fn aws<E, R>(
        &self,
        op: &'static str,
        error: aws_sdk_dynamodbstreams::error::SdkError<E, R>,
    ) -> WatchError
    where
        E: aws_sdk_dynamodbstreams::error::ProvideErrorMetadata
            + std::error::Error
            + Send
            + Sync
            + 'static,
        R: std::fmt::Debug + Send + Sync + 'static,
    {
        WatchError::Aws {
            op,
            table: self.table.clone(),
            source: crate::aws::AwsError::from_sdk(error),
        }
    }

    async fn iterator(&mut self, shard: &Shard) -> Result<String, WatchError> {
        if let Some(iterator) = self.iterators.remove(&shard.id) {
            return Ok(iterator);
        }
        let request = self
            .streams
            .get_shard_iterator()
            .stream_arn(&self.stream_arn)
            .shard_id(&shard.id);
        let start = shards::start_at(shard, &self.checkpoints, self.first_start);
        let request = match &start {
            StartAt::After(sequence) => request
                .shard_iterator_type(ShardIteratorType::AfterSequenceNumber)
                .sequence_number(sequence),
            StartAt::TrimHorizon => request.shard_iterator_type(ShardIteratorType::TrimHorizon),
            StartAt::Latest => request.shard_iterator_type(ShardIteratorType::Latest),
        };
        let output = match request.send().await {
            Ok(output) => output,
            // A checkpoint older than the stream's 24 h (an outage): what it points
            // after is gone. Read what is left from the start, and resync the table
            // for the rest, instead of failing here on every start.
            Err(e)
                if matches!(start, StartAt::After(_))
                    && e.as_service_error().is_some_and(|s| {
                        s.is_trimmed_data_access_exception() || s.is_resource_not_found_exception()
                    }) =>
            {
                warn!(
                    shard = %shard.id,
                    error = %crate::aws::error_message(&e),
                    "the shard's checkpoint is past the stream's retention; reading it from its start and resyncing"
                );
                if let Some(checkpoint) = self.checkpoints.get_mut(&shard.id) {
                    checkpoint.sequence = None;
                }
                self.ctx.resync_now.notify_one();
                self.streams
                    .get_shard_iterator()
                    .stream_arn(&self.stream_arn)
                    .shard_id(&shard.id)
                    .shard_iterator_type(ShardIteratorType::TrimHorizon)
                    .send()
                    .await
                    .map_err(|e| self.aws("GetShardIterator", e))?
            }
            Err(e) => return Err(self.aws("GetShardIterator", e)),
        };
        output.shard_iterator.ok_or_else(|| WatchError::Aws {
            op: "GetShardIterator",
            table: self.table.clone(),
            source: crate::aws::AwsError::other(
                format!("no iterator returned for shard {}", shard.id),
                crate::aws::ErrorClass::Transient,
            ),
        })
    }

    /// Reads one batch from `shard`; returns true when the shard turned out closed.
    async fn poll_shard(&mut self, shard: &Shard) -> bool {
        let iterator = match self.iterator(shard).await {
            Ok(iterator) => iterator,
            Err(error) => {
                warn!(shard = %shard.id, %error, "failed to open shard iterator");
                return false;
            }
        };
        let output = match self
            .streams
            .get_records()
            .shard_iterator(iterator.clone())
            .limit(self.page.limit)
            .send()
            .await
        {
            Ok(output) => {
                self.page.answered();
                output
            }
            Err(e) => {
                if matches!(e, aws_sdk_dynamodbstreams::error::SdkError::TimeoutError(_)) {
                    self.page.timed_out();
                    // The iterator was not used up: the next poll asks again, for less.
                    self.iterators.insert(shard.id.clone(), iterator);
                    warn!(shard = %shard.id, limit = self.page.limit, "reading stream records timed out; asking for fewer at a time");
                    return false;
                }
                let service = e.as_service_error();
                if service.is_some_and(|s| s.is_trimmed_data_access_exception()) {
                    warn!(shard = %shard.id, "stream records were trimmed before relctl read them; resyncing");
                    if let Some(checkpoint) = self.checkpoints.get_mut(&shard.id) {
                        checkpoint.sequence = None;
                    }
                    self.ctx.resync_now.notify_one();
                } else if service.is_some_and(|s| s.is_expired_iterator_exception()) {
                    debug!(shard = %shard.id, "shard iterator expired; reopening from checkpoint");
                } else {
                    warn!(shard = %shard.id, error = %crate::aws::error_message(&e), "failed to read stream records");
                }
                return false;
            }
        };
        let records = output.records.unwrap_or_default();
        self.observe_lag(&records);
        let mut keys = BTreeSet::new();
        for record in &records {
            let sequence = record
                .dynamodb
                .as_ref()
                .and_then(|d| d.sequence_number.clone());
            match self.handle(record).await {
                Ok(found) => keys.extend(found),
                // Set aside; the shard goes on with the records after it.
                Err(error) => {
                    self.failed(sequence.clone(), record.clone(), 0, &error)
                        .await
                }
            }
            if let Some(sequence) = sequence {
                self.checkpoints
                    .entry(shard.id.clone())
                    .or_default()
                    .sequence = Some(sequence);
            }
        }
        self.schedule(keys);
        match output.next_shard_iterator {
            Some(next) => {
                self.iterators.insert(shard.id.clone(), next);
                false
            }
            None => {
                self.checkpoints
                    .entry(shard.id.clone())
                    .or_default()
                    .finished = true;
                true
            }
        }
    }

    /// A record whose intake failed (its `attempts`-th time): kept to try again later,
    /// or parked for good.
    async fn failed(
        &mut self,
        sequence: Option<String>,
        record: Record,
        attempts: u32,
        error: &StoreError,
    ) {
        let attempts = attempts + 1;
        let sequence = sequence.unwrap_or_default();
        match retry::next(attempts, error.class(), Instant::now()) {
            retry::Next::RetryAt(due) => {
                warn!(table = %self.table, %sequence, attempts, %error, "failed to take in a stream record; trying it again later");
                self.retrying.push(retry::Retry {
                    sequence,
                    record,
                    attempts,
                    due,
                    error: error.to_string(),
                });
            }
            retry::Next::Park => self.park(&sequence, &record, attempts, error).await,
        }
        self.retrying_gauge();
    }

    async fn park(&self, sequence: &str, record: &Record, attempts: u32, error: &StoreError) {
        let release_id = record
            .dynamodb
            .as_ref()
            .and_then(|d| d.keys.as_ref())
            .and_then(|k| k.get("release_id"))
            .and_then(|v| v.as_s().ok())
            .cloned()
            .unwrap_or_default();
        error!(
            table = %self.table,
            release_id = ?release_id,
            %sequence,
            attempts,
            %error,
            "gave up on a stream record; parked it (the resync still covers its environments)"
        );
        self.ctx
            .metrics
            .parked_records
            .get_or_create(&TableLabels {
                table: self.table.clone(),
            })
            .inc();
        if let Err(store) = self
            .ctx
            .state
            .park(
                &self.table,
                sequence,
                &release_id,
                &error.to_string(),
                self.ctx.now(),
            )
            .await
        {
            warn!(error = %store, "failed to record the parked stream record");
        }
    }

    /// Tries again the set-aside records that are due.
    async fn retry_due(&mut self) -> BTreeSet<EnvKey> {
        let now = Instant::now();
        let (due, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.retrying)
            .into_iter()
            .partition(|r| r.due <= now);
        self.retrying = later;
        let mut keys = BTreeSet::new();
        for retry in due {
            match self.handle(&retry.record).await {
                Ok(found) => {
                    info!(table = %self.table, sequence = %retry.sequence, "took in a stream record on a retry");
                    keys.extend(found);
                }
                Err(error) => {
                    self.failed(Some(retry.sequence), retry.record, retry.attempts, &error)
                        .await
                }
            }
        }
        self.retrying_gauge();
        keys
    }

    fn retrying_gauge(&self) {
        self.ctx
            .metrics
            .retrying_records
            .get_or_create(&TableLabels {
                table: self.table.clone(),
            })
            .set(self.retrying.len() as i64);
    }

    /// Stream lag: the age of the newest record read; 0 when a poll finds nothing new.
    fn observe_lag(&self, records: &[Record]) {
        let labels = TableLabels {
            table: self.table.clone(),
        };
        let newest = records
            .iter()
            .filter_map(|r| r.dynamodb.as_ref()?.approximate_creation_date_time)
            .map(|t| t.secs())
            .max();
        let lag = newest.map_or(0.0, |secs| {
            (chrono::Utc::now().timestamp() - secs).max(0) as f64
        });
        self.ctx.metrics.stream_lag.get_or_create(&labels).set(lag);
        self.ctx
            .metrics
            .stream_records
            .get_or_create(&labels)
            .inc_by(records.len() as u64);
    }

    fn schedule(&self, keys: BTreeSet<EnvKey>) {
        for key in keys {
            self.ctx
                .queue
                .schedule(key, Duration::ZERO, Priority::Fresh);
        }
    }

    /// One record. A record that does not decode is reported and skipped: it can never
    /// succeed, and it must not hold up the shard. Errors writing are returned so the
    /// record is retried.
    async fn handle(&self, record: &Record) -> Result<Vec<EnvKey>, StoreError> {
        if record.event_name == Some(OperationType::Remove) {
            return Ok(Vec::new());
        }
        let Some(new) = record.dynamodb.as_ref().and_then(|c| c.new_image.clone()) else {
            return Ok(Vec::new());
        };
        let poison = || {
            self.ctx
                .metrics
                .poison_records
                .get_or_create(&TableLabels {
                    table: self.table.clone(),
                })
                .inc();
        };
        let new = match decode(new) {
            Ok(release) => release,
            Err(error) => {
                poison();
                warn!(table = %self.table, %error, "skipped a release item that does not decode (poison record)");
                return Ok(Vec::new());
            }
        };
        let change = record.dynamodb.as_ref();
        let old = change
            .and_then(|c| c.old_image.clone())
            .and_then(|old| decode(old).ok());
        // Counted once: not again when relctl's own status write comes back.
        if let Some(why) = &new.malformed
            && old
                .as_ref()
                .is_none_or(|old| old.malformed != new.malformed)
        {
            poison();
            warn!(
                table = %self.table,
                release_id = ?new.release_id,
                error = %why,
                "a release item does not decode as a whole; its new deployments are refused"
            );
        }
        intake::on_change(&self.ctx, &self.table, old.as_ref(), &new).await
    }
}

#[cfg(test)]
mod page_tests {
    use super::Page;

    #[test]
    fn the_page_halves_on_a_timeout_and_grows_back_after_reads_in_time() {
        let mut page = Page {
            limit: Page::MAX,
            in_time: 0,
        };
        page.timed_out();
        page.timed_out();
        assert_eq!(page.limit, 250);
        for _ in 0..7 {
            page.answered();
        }
        assert_eq!(page.limit, 250, "one slow spell is not forgotten at once");
        page.answered();
        assert_eq!(page.limit, 500);
        for _ in 0..10 {
            page.timed_out();
        }
        assert_eq!(page.limit, Page::MIN, "never below the floor");
    }
}
