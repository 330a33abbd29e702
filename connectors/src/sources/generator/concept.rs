//! The interface every synthetic concept-drift stream implements.
//!
//! A concept stream knows only how to draw the next labelled example; the generator source
//! around it turns examples into Arrow batches of events and (delayed) labels.

use rand_chacha::ChaCha8Rng;

pub use crate::error::ConceptError;

/// How a generated field is typed in the event schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GenFieldKind {
    /// A real number.
    Numeric,
    /// A string category.
    Categorical,
}

/// One generated field value.
#[derive(Debug, Clone, PartialEq)]
pub enum GenValue {
    /// Value of a numeric field.
    Num(f64),
    /// Value of a categorical field.
    Cat(String),
}

/// A seeded synthetic stream with known concept drift.
///
/// `position` is the 0-based index of the example and `total` the stream length when it is
/// finite, so that drifts placed "at a fraction of the stream" know where they are. All
/// randomness must come from `rng`, which the source seeds from the config: the same seed
/// gives the same stream, bit for bit.
pub trait ConceptStream: Send {
    /// Field names and kinds, in the order `next_example` fills `values`.
    fn fields(&self) -> Vec<(String, GenFieldKind)>;

    /// Draws the next example: clears and fills `values` (one per field) and returns the
    /// binary label.
    fn next_example(
        &mut self,
        rng: &mut ChaCha8Rng,
        position: u64,
        total: Option<u64>,
        values: &mut Vec<GenValue>,
    ) -> bool;

    /// Positions (0-based example indices) at which the concept changes, when known, so the
    /// run summary can show drift detections next to the truth.
    fn change_points(&self, total: Option<u64>) -> Vec<u64>;
}
