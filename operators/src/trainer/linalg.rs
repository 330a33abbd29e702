//! The few dense kernels the solvers need on `p × p` systems (p = features + intercept).
//!
//! Written by hand rather than taken from `ndarray-linalg`: that crate needs a system LAPACK
//! (OpenBLAS/MKL/netlib) at build time, which would break "builds anywhere with only crates.io",
//! and a Cholesky of a few hundred unknowns is microseconds next to one pass over the data.

/// Solves `A x = b` for symmetric positive definite `A` (row-major `p × p`) by Cholesky.
///
/// When `A` is only semi-definite (collinear columns, no L2, separable logistic data) a growing
/// diagonal jitter is added, which turns the Newton step into a Levenberg–Marquardt-like step
/// rather than failing. Returns `None` only if even the jittered matrix cannot be factorised
/// (i.e. it holds non-finite values).
pub(crate) fn solve_spd(a: &[f64], b: &[f64]) -> Option<Vec<f64>> {
    let p = b.len();
    debug_assert_eq!(a.len(), p * p);
    let scale = (0..p).map(|i| a[i * p + i].abs()).fold(0.0_f64, f64::max).max(f64::MIN_POSITIVE);
    let mut jitter = 0.0;
    for _ in 0..12 {
        if let Some(l) = cholesky(a, p, jitter) {
            return Some(cholesky_solve(&l, p, b));
        }
        jitter = if jitter == 0.0 { scale * 1e-12 } else { jitter * 100.0 };
    }
    None
}

/// Lower-triangular `L` with `L Lᵀ = A + jitter·I`, or `None` if a pivot is not positive.
fn cholesky(a: &[f64], p: usize, jitter: f64) -> Option<Vec<f64>> {
    let mut l = vec![0.0; p * p];
    for j in 0..p {
        let mut diag = a[j * p + j] + jitter;
        for k in 0..j {
            diag -= l[j * p + k] * l[j * p + k];
        }
        if !(diag > 0.0 && diag.is_finite()) {
            return None;
        }
        let ljj = diag.sqrt();
        l[j * p + j] = ljj;
        for i in j + 1..p {
            let mut v = a[i * p + j];
            for k in 0..j {
                v -= l[i * p + k] * l[j * p + k];
            }
            l[i * p + j] = v / ljj;
        }
    }
    Some(l)
}

fn cholesky_solve(l: &[f64], p: usize, b: &[f64]) -> Vec<f64> {
    // Forward: L z = b.
    let mut z = b.to_vec();
    for i in 0..p {
        let mut v = z[i];
        for k in 0..i {
            v -= l[i * p + k] * z[k];
        }
        z[i] = v / l[i * p + i];
    }
    // Backward: Lᵀ x = z.
    for i in (0..p).rev() {
        let mut v = z[i];
        for k in i + 1..p {
            v -= l[k * p + i] * z[k];
        }
        z[i] = v / l[i * p + i];
    }
    z
}

pub(crate) fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

pub(crate) fn inf_norm(a: &[f64]) -> f64 {
    a.iter().fold(0.0_f64, |m, v| m.max(v.abs()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn solves_a_small_spd_system() {
        // A = [[4, 2, 0], [2, 5, 1], [0, 1, 3]], x = [1, -2, 3] → b = A x.
        let a = [4.0, 2.0, 0.0, 2.0, 5.0, 1.0, 0.0, 1.0, 3.0];
        let b = [0.0, -5.0, 7.0];
        let x = solve_spd(&a, &b).expect("spd");
        for (got, want) in x.iter().zip([1.0, -2.0, 3.0]) {
            assert!((got - want).abs() < 1e-12, "{x:?}");
        }
    }

    #[test]
    fn singular_matrix_gets_jitter_not_failure() {
        let a = [1.0, 1.0, 1.0, 1.0];
        let x = solve_spd(&a, &[2.0, 2.0]).expect("jittered");
        assert!((x[0] + x[1] - 2.0).abs() < 1e-6, "{x:?}");
        assert!(solve_spd(&[f64::NAN], &[1.0]).is_none());
    }
}
