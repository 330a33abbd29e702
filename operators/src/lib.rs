//! eddy's stream operators: the pieces of state the engine drives per record.
//!
//! - [`learner`]: online learners (logistic and linear regression with SGD, AdaGrad, FTRL).
//! - [`encoder`]: the learning-side feature encoder with online standardisation.
//! - [`drift`]: drift detectors (ADWIN, DDM, EDDM, HDDM_A, Page-Hinkley, KSWIN).
//! - [`stats`]: windowed feature statistics and PSI/KS drift against a reference.
//! - [`sql`]: feature SQL: per-batch transforms planned with DataFusion, and windowed
//!   aggregates joined to each event as of its own time.
//! - [`trainer`]: full-batch retraining on the CPU (ndarray) or a CUDA GPU (cudarc, loaded at run time).
//!
//! Nothing here knows about threads, channels or I/O; the engine owns those.
#![warn(missing_docs)]

pub mod drift;
pub mod encoder;
pub mod learner;
pub mod sql;
pub mod stats;
pub mod trainer;
