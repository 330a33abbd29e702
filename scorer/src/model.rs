//! Linear models: the scoring half, shared by the engine's learners and the embedded scorer.
//!
//! Every learner eddy has is a generalised linear model over an [`crate::encoding::Encoding`];
//! the learners differ in how they update weights, not in how they score. Keeping the
//! arithmetic here (one summation order, one link function) is what makes a snapshot score
//! bit-identically to the live model it was taken from.

use crate::encoding::Feature;

/// What the linear score means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelKind {
    /// Binary logistic regression: the prediction is P(label = 1).
    Logistic,
    /// Linear regression: the prediction is the score itself.
    Linear,
}

impl ModelKind {
    /// The lowercase name used in configs and manifests.
    pub fn as_str(self) -> &'static str {
        match self {
            ModelKind::Logistic => "logistic",
            ModelKind::Linear => "linear",
        }
    }

    /// Applies the link function to a raw linear score.
    #[inline]
    pub fn link(self, z: f32) -> f32 {
        match self {
            ModelKind::Logistic => sigmoid(z),
            ModelKind::Linear => z,
        }
    }
}

/// The logistic function, computed so that it neither overflows nor returns exactly 0 or 1
/// for moderate scores.
#[inline]
pub fn sigmoid(z: f32) -> f32 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}

/// `bias + Σ w[index] · value` over a sparse row, in row order. Indices outside `weights`
/// contribute nothing (a defensive choice for scorers fed foreign vectors).
#[inline]
pub fn linear_score(weights: &[f32], bias: f32, row: &[Feature]) -> f32 {
    let mut z = bias;
    for f in row {
        if let Some(w) = weights.get(f.index as usize) {
            z += w * f.value;
        }
    }
    z
}

/// `bias + Σ w[i] · x[i]` over a dense row (the first `x.len()` weights).
#[inline]
pub fn dense_score(weights: &[f32], bias: f32, x: &[f32]) -> f32 {
    let n = x.len().min(weights.len());
    let mut z = bias;
    for (w, v) in weights[..n].iter().zip(&x[..n]) {
        z += w * v;
    }
    z
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sigmoid_is_symmetric_and_bounded() {
        for z in [-100.0f32, -3.0, 0.0, 2.5, 100.0] {
            let p = sigmoid(z);
            assert!((0.0..=1.0).contains(&p));
            assert!((p + sigmoid(-z) - 1.0).abs() < 1e-6);
        }
        assert_eq!(sigmoid(0.0), 0.5);
    }

    #[test]
    fn sparse_and_dense_scores_agree() {
        let w = [0.5f32, -1.0, 2.0];
        let dense = dense_score(&w, 0.25, &[1.0, 2.0, 3.0]);
        let sparse = linear_score(
            &w,
            0.25,
            &[
                Feature { index: 0, value: 1.0 },
                Feature { index: 1, value: 2.0 },
                Feature { index: 2, value: 3.0 },
            ],
        );
        assert_eq!(dense, sparse);
        assert_eq!(dense, 0.25 + 0.5 - 2.0 + 6.0);
    }
}
