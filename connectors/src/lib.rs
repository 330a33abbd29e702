//! eddy's connectors: where records come from and where results go.
//!
//! [`sources`]: JSON lines, CSV, Arrow IPC, stdin and synthetic generators; every source
//! decodes into Arrow batches and routes bad records to the dead letters with their reason
//! and offset. [`sinks`]: JSON-lines files and stdout. Each kind's config implements one
//! `build(&self, cx)` ([`sources::BuildSource`], [`sinks::BuildSink`]); failures to build are
//! [`error::ConnectorError`]s.
#![warn(missing_docs)]

mod registry;

pub mod error;
pub mod fluvio_client;
pub mod sinks;
pub mod sources;
