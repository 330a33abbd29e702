//! `ModelPublisher`: writes model snapshots to the registry on its own thread.
//!
//! The engine thread only copies the weights (a consistent copy, taken between two rows) and
//! hands them over; encoding, checksumming, writing, fsync and the `CURRENT` flip happen here,
//! so publishing never stalls scoring or learning. A periodic publish is dropped, and counted,
//! when the previous one is still being written (the next one carries newer weights anyway);
//! a promotion always waits for its turn.

use std::path::PathBuf;
use std::thread::JoinHandle;

use crossbeam_channel::{bounded, Sender, TrySendError};
use eddy_scorer::registry::{Manifest, ModelRegistry, RegistryError};
use eddy_scorer::snapshot::ModelSnapshot;
use serde::{Deserialize, Serialize};

use crate::units::ConfigDuration;

fn default_true() -> bool {
    true
}
fn default_every() -> Option<u64> {
    Some(50_000)
}

/// `[registry]`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RegistryConfig {
    /// Publish models at all.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Registry directory; defaults to `models/<pipeline>`.
    #[serde(default)]
    pub dir: Option<PathBuf>,
    /// Publish the champion every this many label updates.
    #[serde(default = "default_every")]
    pub publish_every_updates: Option<u64>,
    /// Publish the champion at least this often (wall clock) while it learns.
    #[serde(default)]
    pub publish_interval: Option<ConfigDuration>,
}

impl Default for RegistryConfig {
    fn default() -> Self {
        RegistryConfig {
            enabled: true,
            dir: None,
            publish_every_updates: default_every(),
            publish_interval: None,
        }
    }
}

/// One snapshot to write.
pub struct PublishJob {
    /// The model.
    pub snapshot: ModelSnapshot,
    /// Its manifest.
    pub manifest: Manifest,
    /// Flip `CURRENT` to it (the champion) or only record it (a demoted or shadow model).
    pub promote: bool,
}

/// What the engine sends the writer thread.
enum Message {
    /// Boxed: a job carries a whole manifest and snapshot header, a sync only a sender.
    Job(Box<PublishJob>),
    /// Answer once every earlier job is written (a checkpoint needs the registry settled).
    Sync(Sender<()>),
}

/// What the publisher did.
#[derive(Debug, Default)]
pub struct PublishReport {
    /// Versions written.
    pub written: Vec<u64>,
    /// Failures (the pipeline goes on; the previous version keeps serving).
    pub errors: Vec<String>,
    /// Periodic publishes dropped because the previous one was still being written.
    pub skipped: u64,
}

/// See the module docs.
pub struct ModelPublisher {
    tx: Option<Sender<Message>>,
    handle: Option<JoinHandle<PublishReport>>,
    skipped: u64,
}

impl ModelPublisher {
    /// Opens the registry at `dir` and starts the writer thread; returns the next free version.
    ///
    /// # Errors
    /// When the directory cannot be created or read.
    pub fn start(dir: PathBuf) -> Result<(Self, u64), RegistryError> {
        let registry = ModelRegistry::open(&dir)?;
        let next = registry.latest()?.map(|v| v + 1).unwrap_or(1);
        let (tx, rx) = bounded::<Message>(1);
        let handle = std::thread::Builder::new()
            .name("publisher".into())
            .spawn(move || {
                let mut report = PublishReport::default();
                for message in rx {
                    let job = match message {
                        Message::Job(job) => *job,
                        Message::Sync(done) => {
                            let _ = done.send(());
                            continue;
                        }
                    };
                    let result = if job.promote {
                        registry.publish(&job.snapshot, job.manifest)
                    } else {
                        registry.publish_without_promote(&job.snapshot, job.manifest)
                    };
                    match result {
                        Ok(v) => report.written.push(v),
                        Err(e) => {
                            tracing::error!("publishing model version {} failed: {e}", job.snapshot.version);
                            report.errors.push(format!("version {}: {e}", job.snapshot.version));
                        }
                    }
                }
                report
            })
            .map_err(|e| RegistryError::Io {
                action: "cannot start the publisher thread for",
                path: dir.clone(),
                source: e,
            })?;
        Ok((ModelPublisher { tx: Some(tx), handle: Some(handle), skipped: 0 }, next))
    }

    /// Hands a job over; a periodic one is dropped when the writer is busy. Returns whether it
    /// was accepted.
    pub fn submit(&mut self, job: PublishJob, must: bool) -> bool {
        let Some(tx) = &self.tx else { return false };
        if must {
            return tx.send(Message::Job(Box::new(job))).is_ok();
        }
        match tx.try_send(Message::Job(Box::new(job))) {
            Ok(()) => true,
            Err(TrySendError::Full(_)) => {
                self.skipped += 1;
                false
            }
            Err(TrySendError::Disconnected(_)) => false,
        }
    }

    /// Waits until every accepted job is written (or failed).
    pub fn sync(&self) {
        let Some(tx) = &self.tx else { return };
        let (done_tx, done_rx) = bounded(1);
        if tx.send(Message::Sync(done_tx)).is_ok() {
            let _ = done_rx.recv();
        }
    }

    /// Waits for every accepted job to be written.
    pub fn finish(mut self) -> PublishReport {
        drop(self.tx.take());
        let mut report = self.handle.take().and_then(|h| h.join().ok()).unwrap_or_default();
        report.skipped = self.skipped;
        report
    }
}
