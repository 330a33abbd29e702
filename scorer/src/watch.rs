//! Polling watcher: reloads a [`Scorer`] when the registry's `CURRENT` changes.
//!
//! Polling a tiny file is cheap (one `read` per interval) and works on every platform and
//! file system, including network mounts where change notifications are unreliable, so it is
//! the only backend; a notification backend can be added behind a feature later without
//! changing this API.

use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::scorer::Scorer;

#[derive(Debug, Default)]
struct Stop {
    stopped: Mutex<bool>,
    wake: Condvar,
}

/// Keeps the watcher thread alive; dropping it stops the thread and waits for it.
#[derive(Debug)]
#[must_use = "the watcher stops as soon as its handle is dropped"]
pub struct WatchHandle {
    stop: Arc<Stop>,
    thread: Option<JoinHandle<()>>,
}

impl WatchHandle {
    /// Stops the watcher and waits for its thread to finish (the same as dropping it).
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        *self.stop.stopped.lock().unwrap_or_else(|p| p.into_inner()) = true;
        self.stop.wake.notify_all();
        if let Some(t) = self.thread.take() {
            // A panic in the watcher thread would already have been reported by the runtime;
            // there is nothing more to do with it here.
            let _ = t.join();
        }
    }
}

impl Drop for WatchHandle {
    fn drop(&mut self) {
        self.shutdown();
    }
}

impl Scorer {
    /// Starts a thread that calls [`Scorer::reload`] every `interval` until the returned
    /// handle is dropped. Rejections are not fatal: they are counted in
    /// [`Scorer::rejected_loads`] and kept in [`Scorer::last_error`], and the old model keeps
    /// serving. The thread holds a clone of the scorer.
    ///
    /// # Panics
    ///
    /// If the operating system cannot start a thread.
    pub fn watch(&self, interval: Duration) -> WatchHandle {
        let stop = Arc::new(Stop::default());
        let scorer = self.clone();
        let thread_stop = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("eddy-scorer-watch".into())
            .spawn(move || {
                let mut stopped = thread_stop.stopped.lock().unwrap_or_else(|p| p.into_inner());
                loop {
                    let (guard, _) = thread_stop
                        .wake
                        .wait_timeout_while(stopped, interval, |s| !*s)
                        .unwrap_or_else(|p| p.into_inner());
                    stopped = guard;
                    if *stopped {
                        return;
                    }
                    // The outcome is recorded in the scorer's counters; nothing else to do.
                    let _ = scorer.reload();
                }
            })
            .expect("cannot spawn the eddy-scorer watcher thread");
        WatchHandle { stop, thread: Some(thread) }
    }
}
