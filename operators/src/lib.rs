//! eddy's stream operators.
pub mod drift;
