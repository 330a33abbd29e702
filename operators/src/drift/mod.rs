//! drift detectors (in progress)
