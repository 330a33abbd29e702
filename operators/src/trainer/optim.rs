//! Device-independent optimisers: Newton (also the least-squares solve), L-BFGS and OWL-QN.
//!
//! They see the data only through [`Objective`], so the CPU and CUDA trainers run the very same
//! iteration logic on the host and differ only in how a loss, gradient or Hessian is computed.
//! That is what makes "GPU and CPU agree" a statement about arithmetic, not about algorithms.

use std::collections::VecDeque;

use super::linalg::{dot, inf_norm, solve_spd};
use super::TrainError;

/// The data term of the objective: mean (weighted) loss over the batch.
///
/// Parameters are `θ = [w_0 … w_{d-1}, b?]`: the weights, then the intercept when fitted.
pub(crate) trait Objective {
    /// Mean loss at `theta`; writes its gradient into `grad`.
    fn eval(&mut self, theta: &[f64], grad: &mut [f64]) -> Result<f64, TrainError>;
    /// Mean-loss Hessian at `theta`, row-major `p × p`, into `h`.
    fn hessian(&mut self, theta: &[f64], h: &mut [f64]) -> Result<(), TrainError>;
}

/// The penalty on the first `penalized` parameters (the weights, never the intercept).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Penalty {
    pub l2: f64,
    pub l1: f64,
    pub penalized: usize,
}

impl Penalty {
    fn l1_value(&self, theta: &[f64]) -> f64 {
        if self.l1 == 0.0 {
            return 0.0;
        }
        self.l1 * theta[..self.penalized].iter().map(|v| v.abs()).sum::<f64>()
    }

    /// Minimum-norm subgradient of smooth + L1; zero exactly at the optimum.
    fn pseudo_gradient(&self, theta: &[f64], grad: &[f64], out: &mut [f64]) {
        out.copy_from_slice(grad);
        if self.l1 == 0.0 {
            return;
        }
        for i in 0..self.penalized {
            let g = grad[i];
            out[i] = if theta[i] > 0.0 {
                g + self.l1
            } else if theta[i] < 0.0 {
                g - self.l1
            } else if g + self.l1 < 0.0 {
                g + self.l1
            } else if g - self.l1 > 0.0 {
                g - self.l1
            } else {
                0.0
            };
        }
    }
}

/// Stopping settings.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Settings {
    pub tolerance: f64,
    pub max_iterations: usize,
    pub memory: usize,
}

/// Where an optimiser stopped.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Outcome {
    /// Full objective (loss + L2 + L1).
    pub value: f64,
    /// ‖pseudo-gradient‖∞.
    pub gradient_norm: f64,
    pub iterations: usize,
}

/// Mean loss + (l2/2)‖w‖² and its gradient.
fn eval_smooth(
    obj: &mut dyn Objective,
    pen: &Penalty,
    theta: &[f64],
    grad: &mut [f64],
) -> Result<f64, TrainError> {
    let mut f = obj.eval(theta, grad)?;
    if pen.l2 > 0.0 {
        for i in 0..pen.penalized {
            f += 0.5 * pen.l2 * theta[i] * theta[i];
            grad[i] += pen.l2 * theta[i];
        }
    }
    Ok(f)
}

/// Damped Newton on the smooth objective (no L1). For a quadratic (least squares) the first
/// full step *is* the normal-equation solution `(XᵀSX/S + λI) θ = XᵀSy/S`; later steps are
/// iterative refinement, which mops up the rounding of an f32-accumulated Gram (CUDA) using the
/// gradient computed directly from the data.
///
/// `line_search = false` takes full steps (right for a quadratic, where the step is exact).
pub(crate) fn newton(
    obj: &mut dyn Objective,
    pen: &Penalty,
    theta: &mut [f64],
    set: &Settings,
    line_search: bool,
) -> Result<Outcome, TrainError> {
    let p = theta.len();
    let mut g = vec![0.0; p];
    let mut h = vec![0.0; p * p];
    let mut trial = vec![0.0; p];
    let mut g_trial = vec![0.0; p];
    let mut f = eval_smooth(obj, pen, theta, &mut g)?;
    let mut iterations = 0;
    loop {
        let gn = inf_norm(&g);
        if gn <= set.tolerance || iterations >= set.max_iterations || !f.is_finite() {
            return Ok(Outcome { value: f, gradient_norm: gn, iterations });
        }
        obj.hessian(theta, &mut h)?;
        for i in 0..pen.penalized {
            h[i * p + i] += pen.l2;
        }
        let neg_g: Vec<f64> = g.iter().map(|v| -v).collect();
        let step = match solve_spd(&h, &neg_g) {
            Some(s) if dot(&s, &g) < 0.0 => s,
            // Not a descent direction (Hessian broken by rounding): fall back to steepest descent.
            _ => neg_g,
        };
        iterations += 1;
        let slope = dot(&step, &g);
        let mut alpha = 1.0;
        let mut accepted = false;
        for _ in 0..40 {
            for i in 0..p {
                trial[i] = theta[i] + alpha * step[i];
            }
            let ft = eval_smooth(obj, pen, &trial, &mut g_trial)?;
            // A full step on a quadratic is exact; accept it even if f32 rounding makes the
            // objective tick up by an ulp.
            if !line_search || ft <= f + 1e-4 * alpha * slope {
                accepted = ft.is_finite();
                if accepted {
                    f = ft;
                }
                break;
            }
            alpha *= 0.5;
        }
        if !accepted {
            let gn = inf_norm(&g);
            return Ok(Outcome { value: f, gradient_norm: gn, iterations });
        }
        theta.copy_from_slice(&trial);
        g.copy_from_slice(&g_trial);
    }
}

/// L-BFGS (`pen.l1 == 0`, strong-Wolfe line search) or OWL-QN (`pen.l1 > 0`, Andrew & Gao 2007:
/// pseudo-gradient, orthant-projected backtracking). One routine because OWL-QN *is* L-BFGS with
/// three small changes, all no-ops when `l1 = 0`.
pub(crate) fn quasi_newton(
    obj: &mut dyn Objective,
    pen: &Penalty,
    theta: &mut [f64],
    set: &Settings,
) -> Result<Outcome, TrainError> {
    let p = theta.len();
    let owl = pen.l1 > 0.0;
    let mut g = vec![0.0; p];
    let mut pg = vec![0.0; p];
    let mut f = eval_smooth(obj, pen, theta, &mut g)?;
    let mut full = f + pen.l1_value(theta);
    pen.pseudo_gradient(theta, &g, &mut pg);
    let mut history: VecDeque<(Vec<f64>, Vec<f64>, f64)> = VecDeque::with_capacity(set.memory);
    let mut iterations = 0;
    loop {
        let gn = inf_norm(&pg);
        if gn <= set.tolerance || iterations >= set.max_iterations || !full.is_finite() {
            return Ok(Outcome { value: full, gradient_norm: gn, iterations });
        }
        let mut dir = two_loop(&pg, &history);
        if owl {
            // Keep the direction in the orthant the pseudo-gradient points away from.
            for i in 0..pen.penalized {
                if dir[i] * pg[i] >= 0.0 {
                    dir[i] = 0.0;
                }
            }
        }
        let mut slope = dot(&dir, &pg);
        if slope >= 0.0 || slope.is_nan() {
            history.clear();
            dir = pg.iter().map(|v| -v).collect();
            slope = -dot(&pg, &pg);
        }
        let alpha0 = if history.is_empty() { (1.0 / dot(&pg, &pg).sqrt()).min(1.0) } else { 1.0 };
        iterations += 1;
        let found = if owl {
            owlqn_backtrack(obj, pen, theta, full, &pg, &dir, alpha0)?
        } else {
            wolfe(obj, pen, theta, f, slope, &dir, alpha0)?
        };
        let Some((x_new, f_new, g_new)) = found else {
            if history.is_empty() {
                // Even steepest descent cannot decrease f: we are at the f32/f64 noise floor.
                return Ok(Outcome { value: full, gradient_norm: gn, iterations });
            }
            history.clear();
            continue;
        };
        let s: Vec<f64> = x_new.iter().zip(theta.iter()).map(|(a, b)| a - b).collect();
        let y: Vec<f64> = g_new.iter().zip(&g).map(|(a, b)| a - b).collect();
        let sy = dot(&s, &y);
        // Curvature condition; Wolfe guarantees it for L-BFGS, OWL-QN must check.
        if sy > 1e-12 * dot(&y, &y).max(f64::MIN_POSITIVE).sqrt() * dot(&s, &s).sqrt() {
            if history.len() == set.memory {
                history.pop_front();
            }
            history.push_back((s, y, 1.0 / sy));
        }
        theta.copy_from_slice(&x_new);
        g = g_new;
        f = f_new;
        full = f + pen.l1_value(theta);
        pen.pseudo_gradient(theta, &g, &mut pg);
    }
}

/// `−H⁻¹ g` from the L-BFGS history (Nocedal & Wright, Algorithm 7.4).
fn two_loop(g: &[f64], history: &VecDeque<(Vec<f64>, Vec<f64>, f64)>) -> Vec<f64> {
    let mut q = g.to_vec();
    let mut alphas = Vec::with_capacity(history.len());
    for (s, y, rho) in history.iter().rev() {
        let a = rho * dot(s, &q);
        for (qi, yi) in q.iter_mut().zip(y) {
            *qi -= a * yi;
        }
        alphas.push(a);
    }
    if let Some((s, y, _)) = history.back() {
        let gamma = dot(s, y) / dot(y, y);
        q.iter_mut().for_each(|v| *v *= gamma);
    }
    for ((s, y, rho), a) in history.iter().zip(alphas.iter().rev()) {
        let b = rho * dot(y, &q);
        for (qi, si) in q.iter_mut().zip(s) {
            *qi += (a - b) * si;
        }
    }
    q.iter_mut().for_each(|v| *v = -*v);
    q
}

type Point = (Vec<f64>, f64, Vec<f64>);

/// Line search for the strong Wolfe conditions (Nocedal & Wright, Algorithms 3.5 and 3.6, with
/// safeguarded cubic interpolation in the zoom phase). Strong Wolfe keeps `sᵀy > 0`, so the
/// L-BFGS matrix stays positive definite without skipping updates.
#[allow(clippy::too_many_arguments)]
fn wolfe(
    obj: &mut dyn Objective,
    pen: &Penalty,
    theta: &[f64],
    f0: f64,
    slope0: f64,
    dir: &[f64],
    alpha0: f64,
) -> Result<Option<Point>, TrainError> {
    const C1: f64 = 1e-4;
    const C2: f64 = 0.9;
    let p = theta.len();
    let mut at = |alpha: f64| -> Result<(Point, f64), TrainError> {
        let x: Vec<f64> = (0..p).map(|i| theta[i] + alpha * dir[i]).collect();
        let mut g = vec![0.0; p];
        let f = eval_smooth(obj, pen, &x, &mut g)?;
        let d = dot(&g, dir);
        Ok(((x, f, g), d))
    };
    let armijo = |alpha: f64, f: f64| f <= f0 + C1 * alpha * slope0;

    // Bracketing phase. `lo` is the best point so far that satisfies Armijo (α = 0 at first).
    let (mut a_lo, mut f_lo, mut d_lo, mut pt_lo): (f64, f64, f64, Option<Point>) = (0.0, f0, slope0, None);
    let mut a = alpha0;
    let (mut a_hi, mut f_hi, mut d_hi);
    let mut i = 0;
    loop {
        let (pt, d) = at(a)?;
        let f = pt.1;
        if !armijo(a, f) || (i > 0 && f >= f_lo) || !f.is_finite() {
            (a_hi, f_hi, d_hi) = (a, f, d);
            break;
        }
        if d.abs() <= -C2 * slope0 {
            return Ok(Some(pt));
        }
        if d >= 0.0 {
            (a_hi, f_hi, d_hi) = (a_lo, f_lo, d_lo);
            (a_lo, f_lo, d_lo, pt_lo) = (a, f, d, Some(pt));
            break;
        }
        (a_lo, f_lo, d_lo, pt_lo) = (a, f, d, Some(pt));
        i += 1;
        if i >= 25 {
            return Ok(pt_lo);
        }
        a *= 2.0;
    }

    // Zoom phase: shrink [lo, hi] until strong Wolfe holds.
    for _ in 0..40 {
        let a = interpolate(a_lo, f_lo, d_lo, a_hi, f_hi, d_hi);
        if (a_hi - a_lo).abs() <= 1e-14 * a_lo.abs().max(1e-300) {
            break;
        }
        let (pt, d) = at(a)?;
        let f = pt.1;
        if !armijo(a, f) || f >= f_lo || !f.is_finite() {
            (a_hi, f_hi, d_hi) = (a, f, d);
        } else {
            if d.abs() <= -C2 * slope0 {
                return Ok(Some(pt));
            }
            if d * (a_hi - a_lo) >= 0.0 {
                (a_hi, f_hi, d_hi) = (a_lo, f_lo, d_lo);
            }
            (a_lo, f_lo, d_lo, pt_lo) = (a, f, d, Some(pt));
        }
    }
    // Curvature never met within the budget (noise floor): a point with sufficient decrease is
    // still progress; `None` when there is none.
    Ok(pt_lo)
}

/// Minimiser of the cubic through `(a0, f0, d0)` and `(a1, f1, d1)`, kept inside the middle 80%
/// of the interval; bisection when the cubic is not usable (non-finite ends, no real minimum).
fn interpolate(a0: f64, f0: f64, d0: f64, a1: f64, f1: f64, d1: f64) -> f64 {
    let (lo, hi) = if a0 < a1 { (a0, a1) } else { (a1, a0) };
    let mid = 0.5 * (lo + hi);
    if !(f0.is_finite() && f1.is_finite() && d0.is_finite() && d1.is_finite()) {
        return mid;
    }
    let e = d0 + d1 - 3.0 * (f0 - f1) / (a0 - a1);
    let disc = e * e - d0 * d1;
    if disc < 0.0 {
        return mid;
    }
    let e2 = (a1 - a0).signum() * disc.sqrt();
    let a = a1 - (a1 - a0) * (d1 + e2 - e) / (d1 - d0 + 2.0 * e2);
    let w = hi - lo;
    if a.is_finite() && a >= lo + 0.1 * w && a <= hi - 0.1 * w {
        a
    } else {
        mid
    }
}

/// OWL-QN's backtracking: project each trial point onto the orthant of the current point (or of
/// the negative pseudo-gradient where a weight is zero), so weights can land exactly on zero.
#[allow(clippy::too_many_arguments)]
fn owlqn_backtrack(
    obj: &mut dyn Objective,
    pen: &Penalty,
    theta: &[f64],
    full0: f64,
    pg: &[f64],
    dir: &[f64],
    alpha0: f64,
) -> Result<Option<Point>, TrainError> {
    let p = theta.len();
    let orthant: Vec<f64> = (0..p)
        .map(|i| if theta[i] != 0.0 { theta[i].signum() } else { -pg[i].signum() * f64::from(pg[i] != 0.0) })
        .collect();
    let mut alpha = alpha0;
    for _ in 0..50 {
        let mut x: Vec<f64> = (0..p).map(|i| theta[i] + alpha * dir[i]).collect();
        for i in 0..pen.penalized {
            if x[i] * orthant[i] <= 0.0 {
                x[i] = 0.0;
            }
        }
        let mut g = vec![0.0; p];
        let f = eval_smooth(obj, pen, &x, &mut g)?;
        let full = f + pen.l1_value(&x);
        let decrease: f64 = (0..p).map(|i| pg[i] * (x[i] - theta[i])).sum();
        if full.is_finite() && full <= full0 + 1e-4 * decrease && decrease < 0.0 {
            return Ok(Some((x, f, g)));
        }
        alpha *= 0.5;
    }
    Ok(None)
}

#[cfg(test)]
#[allow(clippy::needless_range_loop)] // index loops mirror the formulas being checked
mod tests {
    use super::*;

    /// f(θ) = ½ Σ a_i (θ_i − c_i)², an ill-conditioned separable quadratic.
    struct Quad {
        a: Vec<f64>,
        c: Vec<f64>,
    }

    impl Objective for Quad {
        fn eval(&mut self, theta: &[f64], grad: &mut [f64]) -> Result<f64, TrainError> {
            let mut f = 0.0;
            for i in 0..theta.len() {
                let r = theta[i] - self.c[i];
                f += 0.5 * self.a[i] * r * r;
                grad[i] = self.a[i] * r;
            }
            Ok(f)
        }
        fn hessian(&mut self, _theta: &[f64], h: &mut [f64]) -> Result<(), TrainError> {
            let p = self.a.len();
            h.iter_mut().for_each(|v| *v = 0.0);
            for i in 0..p {
                h[i * p + i] = self.a[i];
            }
            Ok(())
        }
    }

    fn quad() -> Quad {
        Quad { a: vec![1.0, 10.0, 100.0, 0.1], c: vec![1.0, -2.0, 0.5, 3.0] }
    }

    const SET: Settings = Settings { tolerance: 1e-10, max_iterations: 200, memory: 10 };

    #[test]
    fn lbfgs_finds_quadratic_minimum() {
        let pen = Penalty { l2: 0.0, l1: 0.0, penalized: 4 };
        let mut th = vec![0.0; 4];
        let out = quasi_newton(&mut quad(), &pen, &mut th, &SET).expect("runs");
        assert!(out.gradient_norm <= 1e-10, "{out:?}");
        for (t, c) in th.iter().zip(quad().c) {
            assert!((t - c).abs() < 1e-9);
        }
    }

    #[test]
    fn owlqn_soft_thresholds() {
        // With l1, the minimiser of ½a(θ−c)² + l1|θ| is soft-threshold(c, l1/a).
        let q = quad();
        let l1 = 0.5;
        let pen = Penalty { l2: 0.0, l1, penalized: 4 };
        let mut th = vec![0.0; 4];
        let out = quasi_newton(&mut quad(), &pen, &mut th, &SET).expect("runs");
        assert!(out.gradient_norm <= 1e-10, "{out:?}");
        for i in 0..4 {
            let t = l1 / q.a[i];
            let want = q.c[i].signum() * (q.c[i].abs() - t).max(0.0);
            assert!((th[i] - want).abs() < 1e-9, "{i}: {} vs {want}", th[i]);
        }
        // a = 1, c = 1 … and a = 0.1, c = 3: |c| < l1/a = 5 → exactly zero.
        assert_eq!(th[3], 0.0);
    }

    #[test]
    fn newton_one_step_on_quadratic() {
        let pen = Penalty { l2: 1.0, l1: 0.0, penalized: 4 };
        let mut th = vec![0.0; 4];
        let out = newton(&mut quad(), &pen, &mut th, &SET, false).expect("runs");
        assert_eq!(out.iterations, 1);
        let q = quad();
        for i in 0..4 {
            assert!((th[i] - q.a[i] * q.c[i] / (q.a[i] + 1.0)).abs() < 1e-12);
        }
    }

    #[test]
    fn iteration_cap_is_reported_not_converged() {
        let pen = Penalty { l2: 0.0, l1: 0.0, penalized: 4 };
        let mut th = vec![0.0; 4];
        let set = Settings { tolerance: 1e-14, max_iterations: 2, memory: 10 };
        let out = quasi_newton(&mut quad(), &pen, &mut th, &set).expect("runs");
        assert_eq!(out.iterations, 2);
        assert!(out.gradient_norm > 1e-14);
    }
}
