//! The CPU trainer: ndarray input, rayon over row blocks, f64 accumulation.
//!
//! Every pass over the data is split into fixed blocks of rows processed in parallel (both cores
//! here); the per-block partial sums are then added *in block order*, so a fit is bit-for-bit
//! reproducible whatever the thread count or scheduling. Products are formed from f32 inputs
//! but accumulated in f64, so the gradient is accurate enough to meet tight tolerances even on
//! millions of rows.

use std::time::Instant;

use ndarray::{Array2, ArrayView2, CowArray, Ix1};
use rayon::prelude::*;

use super::optim::Objective;
use super::{
    curvature, finish, fit, initial_params, loss_and_residual, ModelKind, Solver, TrainError, TrainedModel,
    Trainer, TrainerConfig, TrainingData,
};

/// Rows per parallel block for loss/gradient passes: large enough to amortise scheduling,
/// small enough to balance two to sixteen cores on a million rows.
const BLOCK: usize = 8192;
/// Rows per block for Hessian passes, bounded so the f64 block copy stays cache-friendly.
const HESSIAN_BLOCK: usize = 2048;

/// Full-batch trainer on the CPU.
#[derive(Debug, Clone)]
pub struct CpuTrainer {
    kind: ModelKind,
    config: TrainerConfig,
}

impl CpuTrainer {
    /// A CPU trainer for `kind`; `config.device` is not consulted.
    pub fn new(kind: ModelKind, config: TrainerConfig) -> Self {
        CpuTrainer { kind, config }
    }
}

impl Trainer for CpuTrainer {
    fn train(
        &self,
        data: &TrainingData<'_>,
        init: Option<(&[f32], f32)>,
    ) -> Result<TrainedModel, TrainError> {
        let started = Instant::now();
        self.config.validate()?;
        data.validate(self.kind)?;
        let (n, d) = data.x.dim();
        let x = data.x.as_standard_layout();
        let y: CowArray<'_, f32, Ix1> = data.y.as_standard_layout();
        let s: Option<CowArray<'_, f32, Ix1>> = data.weights.as_ref().map(|w| w.as_standard_layout());
        let (Some(xs), Some(ys)) = (x.as_slice(), y.as_slice()) else {
            return Err(TrainError::InvalidData("could not obtain a contiguous copy of the data".into()));
        };
        let ss = match &s {
            Some(s) => {
                Some(s.as_slice().ok_or_else(|| TrainError::InvalidData("non-contiguous weights".into()))?)
            }
            None => None,
        };
        let mut theta = initial_params(&self.config, d, init)?;
        let mut obj = CpuObjective::new(self.kind, xs, ys, ss, n, d, self.config.fit_intercept);
        let use_newton = match self.config.solver {
            Solver::Newton => true,
            Solver::Lbfgs => false,
            Solver::Auto => d <= self.config.newton_max_features,
        };
        let out = fit(self.kind, &self.config, &mut obj, &mut theta, d, use_newton)?;
        finish(&theta, d, out, &self.config, self.device(), started)
    }

    fn device(&self) -> String {
        format!("cpu ({} threads)", rayon::current_num_threads())
    }
}

/// Mean-loss objective over row-major f32 data.
pub(crate) struct CpuObjective<'a> {
    kind: ModelKind,
    x: &'a [f32],
    y: &'a [f32],
    s: Option<&'a [f32]>,
    n: usize,
    d: usize,
    intercept: bool,
    /// Σ sample weights: the mean's denominator.
    total_weight: f64,
    /// Linear regression's Hessian does not depend on θ: computed once.
    cached_hessian: Option<Vec<f64>>,
}

impl<'a> CpuObjective<'a> {
    pub(crate) fn new(
        kind: ModelKind,
        x: &'a [f32],
        y: &'a [f32],
        s: Option<&'a [f32]>,
        n: usize,
        d: usize,
        intercept: bool,
    ) -> Self {
        let total_weight = s.map_or(n as f64, |s| s.iter().map(|v| f64::from(*v)).sum());
        CpuObjective { kind, x, y, s, n, d, intercept, total_weight, cached_hessian: None }
    }

    fn p(&self) -> usize {
        self.d + usize::from(self.intercept)
    }

    fn blocks(&self, size: usize) -> impl IndexedParallelIterator<Item = (usize, usize)> + '_ {
        let n = self.n;
        (0..n.div_ceil(size)).into_par_iter().map(move |c| (c * size, ((c + 1) * size).min(n)))
    }

    fn score(&self, row: &[f32], theta: &[f64]) -> f64 {
        let b = if self.intercept { theta[self.d] } else { 0.0 };
        b + dot_f32_f64(row, &theta[..self.d])
    }
}

/// `Σ a_j b_j` with four independent f64 accumulators, so the adds pipeline instead of waiting
/// on one another (a single chain is latency-bound at ~4 cycles per feature).
#[inline]
fn dot_f32_f64(a: &[f32], b: &[f64]) -> f64 {
    let mut acc = [0.0_f64; 4];
    let (a4, a_rest) = a.split_at(a.len() - a.len() % 4);
    let (b4, b_rest) = b.split_at(a4.len());
    for (ac, bc) in a4.chunks_exact(4).zip(b4.chunks_exact(4)) {
        for k in 0..4 {
            acc[k] += f64::from(ac[k]) * bc[k];
        }
    }
    let tail: f64 = a_rest.iter().zip(b_rest).map(|(x, w)| f64::from(*x) * w).sum();
    (acc[0] + acc[1]) + (acc[2] + acc[3]) + tail
}

impl Objective for CpuObjective<'_> {
    fn eval(&mut self, theta: &[f64], grad: &mut [f64]) -> Result<f64, TrainError> {
        let (d, p) = (self.d, self.p());
        let this = &*self;
        let partials: Vec<(f64, Vec<f64>)> = this
            .blocks(BLOCK)
            .map(|(lo, hi)| {
                let mut g = vec![0.0; p];
                let mut loss = 0.0;
                for i in lo..hi {
                    let row = &this.x[i * d..(i + 1) * d];
                    let z = this.score(row, theta);
                    let (l, r) = loss_and_residual(this.kind, z, f64::from(this.y[i]));
                    let si = this.s.map_or(1.0, |s| f64::from(s[i]));
                    loss += si * l;
                    let r = si * r;
                    for (gj, xj) in g[..d].iter_mut().zip(row) {
                        *gj += r * f64::from(*xj);
                    }
                    if this.intercept {
                        g[d] += r;
                    }
                }
                (loss, g)
            })
            .collect();
        let mut loss = 0.0;
        grad.iter_mut().for_each(|v| *v = 0.0);
        for (l, g) in &partials {
            loss += l;
            for (a, b) in grad.iter_mut().zip(g) {
                *a += b;
            }
        }
        let inv = 1.0 / self.total_weight;
        grad.iter_mut().for_each(|v| *v *= inv);
        Ok(loss * inv)
    }

    fn hessian(&mut self, theta: &[f64], h: &mut [f64]) -> Result<(), TrainError> {
        if let Some(cached) = &self.cached_hessian {
            h.copy_from_slice(cached);
            return Ok(());
        }
        let (d, p) = (self.d, self.p());
        let this = &*self;
        // Each block: A = diag(√c) [X 1] in f64, then AᵀA by matrixmultiply's dgemm.
        let partials: Vec<Array2<f64>> = this
            .blocks(HESSIAN_BLOCK)
            .map(|(lo, hi)| {
                let mut a = Array2::<f64>::zeros((hi - lo, p));
                for (k, mut out) in a.outer_iter_mut().enumerate() {
                    let i = lo + k;
                    let row = &this.x[i * d..(i + 1) * d];
                    let c = match this.kind {
                        ModelKind::Linear => 1.0,
                        ModelKind::Logistic => curvature(this.kind, this.score(row, theta)),
                    };
                    let w = (c * this.s.map_or(1.0, |s| f64::from(s[i]))).sqrt();
                    for (o, xj) in out.iter_mut().zip(row) {
                        *o = w * f64::from(*xj);
                    }
                    if this.intercept {
                        out[d] = w;
                    }
                }
                let av: ArrayView2<'_, f64> = a.view();
                av.t().dot(&av)
            })
            .collect();
        let mut total = Array2::<f64>::zeros((p, p));
        for part in &partials {
            total += part;
        }
        let inv = 1.0 / self.total_weight;
        for (dst, src) in h.iter_mut().zip(total.iter()) {
            *dst = src * inv;
        }
        if self.kind == ModelKind::Linear {
            self.cached_hessian = Some(h.to_vec());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gradient_matches_finite_differences() {
        let x: Vec<f32> = vec![0.5, -1.0, 2.0, 0.3, -0.7, 1.5, 1.0, 0.0, -2.0, 0.25, 0.1, -0.4];
        let y = [1.0, 0.0, 1.0, 0.0];
        let s = [1.0, 2.0, 0.5, 1.0];
        for kind in [ModelKind::Logistic, ModelKind::Linear] {
            let mut obj = CpuObjective::new(kind, &x, &y, Some(&s), 4, 3, true);
            let theta = [0.3, -0.2, 0.1, 0.05];
            let mut g = [0.0; 4];
            obj.eval(&theta, &mut g).expect("eval");
            let mut h = [0.0; 16];
            obj.hessian(&theta, &mut h).expect("hessian");
            for j in 0..4 {
                let eps = 1e-6;
                let (mut tp, mut tm) = (theta, theta);
                tp[j] += eps;
                tm[j] -= eps;
                let (mut gp, mut gm) = ([0.0; 4], [0.0; 4]);
                let fp = obj.eval(&tp, &mut gp).expect("eval");
                let fm = obj.eval(&tm, &mut gm).expect("eval");
                assert!(((fp - fm) / (2.0 * eps) - g[j]).abs() < 1e-7, "{kind:?} grad {j}");
                for k in 0..4 {
                    let fd = (gp[k] - gm[k]) / (2.0 * eps);
                    assert!((fd - h[k * 4 + j]).abs() < 1e-6, "{kind:?} hessian {k},{j}");
                }
            }
        }
    }

    #[test]
    fn blocked_dot_matches_naive() {
        let a: Vec<f32> = (0..11).map(|i| i as f32 * 0.5 - 2.0).collect();
        let b: Vec<f64> = (0..11).map(|i| 1.0 / (i as f64 + 1.0)).collect();
        let naive: f64 = a.iter().zip(&b).map(|(x, y)| f64::from(*x) * y).sum();
        assert!((dot_f32_f64(&a, &b) - naive).abs() < 1e-12);
    }
}
