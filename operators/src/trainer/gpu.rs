//! The CUDA trainer: the data lives on the device, the optimiser on the host.
//!
//! X, y and the sample weights are uploaded once per fit. Each objective evaluation then moves
//! only `d + 1` numbers each way: the weights go down, cuBLAS `sgemv` forms `z = X·w`, one NVRTC
//! kernel turns `z` into per-row residuals (and curvatures) while reducing the loss in f64 per
//! block, a second `sgemv` forms `Xᵀ·r`, and the `d`-vector gradient plus a few block partials come
//! back. The Hessian/Gram (least squares, and Newton if asked for) is an `sgemm` on the device
//! followed by the same host Cholesky the CPU uses.
//!
//! The driver, NVRTC and cuBLAS are loaded at run time (cudarc `dynamic-loading`), so this module
//! compiles and links on machines without CUDA. cudarc *panics* rather than erring when a library
//! is missing, so [`cuda_probe`] asks `is_culib_present()` for each library first and still runs
//! every first-touch call under `catch_unwind`.
//!
//! Precision: X·w and Xᵀ·r are f32 cuBLAS sums (the loss is reduced in f64). The gradient is
//! therefore accurate to roughly 1e-6 relative on a million rows, which bounds how small a
//! tolerance the CUDA trainer can honestly report as converged.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use cudarc::cublas::sys::cublasOperation_t;
use cudarc::cublas::{CudaBlas, Gemm, GemmConfig, Gemv, GemvConfig};
use cudarc::driver::{CudaContext, CudaFunction, CudaSlice, CudaStream, LaunchConfig, PushKernelArg};

use super::optim::Objective;
use super::TrainingData;
use super::{
    finish, fit, initial_params, ModelKind, Solver, TrainError, TrainedModel, Trainer, TrainerConfig,
};

/// Per-row work mirrors `loss_and_residual` and `curvature` in `mod.rs` line for line, in f64.
const KERNELS: &str = r#"
extern "C" __global__ void pointwise(const float* z, const float* y, const float* s, double b, int n,
                                     int logistic, float* r, float* c, double* partial) {
    __shared__ double sl[256];
    __shared__ double sr[256];
    __shared__ double sc[256];
    double l = 0.0, rs = 0.0, cs = 0.0;
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += blockDim.x * gridDim.x) {
        double zi = (double)z[i] + b;
        double yi = (double)y[i];
        double si = (double)s[i];
        double li, ri, ci;
        if (logistic) {
            double e = exp(-fabs(zi));
            li = fmax(zi, 0.0) + log1p(e) - yi * zi;
            double p = zi >= 0.0 ? 1.0 / (1.0 + e) : e / (1.0 + e);
            ri = p - yi;
            ci = e / ((1.0 + e) * (1.0 + e));
        } else {
            ri = zi - yi;
            li = 0.5 * ri * ri;
            ci = 1.0;
        }
        l += si * li;
        rs += si * ri;
        cs += si * ci;
        r[i] = (float)(si * ri);
        c[i] = (float)sqrt(si * ci);
    }
    sl[threadIdx.x] = l;
    sr[threadIdx.x] = rs;
    sc[threadIdx.x] = cs;
    __syncthreads();
    for (int k = blockDim.x / 2; k > 0; k >>= 1) {
        if (threadIdx.x < k) {
            sl[threadIdx.x] += sl[threadIdx.x + k];
            sr[threadIdx.x] += sr[threadIdx.x + k];
            sc[threadIdx.x] += sc[threadIdx.x + k];
        }
        __syncthreads();
    }
    if (threadIdx.x == 0) {
        partial[3 * blockIdx.x] = sl[0];
        partial[3 * blockIdx.x + 1] = sr[0];
        partial[3 * blockIdx.x + 2] = sc[0];
    }
}

extern "C" __global__ void scale_rows(const float* x, const float* c, int n, int d, float* out) {
    long long total = (long long)n * d;
    for (long long k = blockIdx.x * (long long)blockDim.x + threadIdx.x; k < total;
         k += (long long)blockDim.x * gridDim.x) {
        out[k] = x[k] * c[k / d];
    }
}
"#;

/// Threads per block; must match the shared arrays in [`KERNELS`].
const THREADS: u32 = 256;
/// Grid cap for the grid-stride kernels: enough blocks to fill any current GPU, few enough that
/// the per-block partials are a trivial copy.
const MAX_BLOCKS: u32 = 1024;

/// A usable CUDA device: context plus compiled kernels.
#[derive(Debug)]
struct Gpu {
    ctx: Arc<CudaContext>,
    pointwise: CudaFunction,
    scale_rows: CudaFunction,
    name: String,
}

/// Opening the device and compiling the kernels is done once per process: whether a driver is
/// present does not change while we run, and NVRTC compilation costs ~100 ms.
fn gpu() -> Result<Arc<Gpu>, CudaUnavailable> {
    static GPU: OnceLock<Result<Arc<Gpu>, CudaUnavailable>> = OnceLock::new();
    GPU.get_or_init(|| open_device().map(Arc::new)).clone()
}

/// Runs a first-touch cudarc call, turning both its error and a panic into a reason.
fn guarded<T, E: std::fmt::Display>(
    what: &str,
    f: impl FnOnce() -> Result<T, E>,
) -> Result<T, CudaUnavailable> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(CudaUnavailable(format!("{what} failed: {e}"))),
        Err(panic) => {
            let msg = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("unknown panic");
            Err(CudaUnavailable(format!("{what} panicked: {msg}")))
        }
    }
}

fn open_device() -> Result<Gpu, CudaUnavailable> {
    let unavailable = |why: String| Err(CudaUnavailable(why));
    // SAFETY: `is_culib_present` only tries to dlopen the library by its candidate names.
    if !unsafe { cudarc::driver::sys::is_culib_present() } {
        return unavailable("no CUDA driver found (libcuda could not be loaded)".into());
    }
    let count = guarded("cuDeviceGetCount", CudaContext::device_count)
        .map_err(|e| CudaUnavailable(format!("CUDA driver found but unusable: {e}")))?;
    if count < 1 {
        return unavailable("CUDA driver found but it reports no CUDA device".into());
    }
    let ctx = guarded("creating a CUDA context on device 0", || CudaContext::new(0))?;
    let name = ctx.name().unwrap_or_else(|_| "unknown device".into());
    // SAFETY: as above, a dlopen probe.
    if !unsafe { cudarc::nvrtc::sys::is_culib_present() } {
        return unavailable(format!("CUDA device {name} found but NVRTC (libnvrtc) could not be loaded"));
    }
    // SAFETY: as above, a dlopen probe.
    if !unsafe { cudarc::cublas::sys::is_culib_present() } {
        return unavailable(format!("CUDA device {name} found but cuBLAS (libcublas) could not be loaded"));
    }
    let ptx = guarded("NVRTC compilation of the trainer kernels", || cudarc::nvrtc::compile_ptx(KERNELS))?;
    let module = guarded("loading the trainer kernels", || ctx.load_module(ptx))?;
    let pointwise = guarded("loading kernel `pointwise`", || module.load_function("pointwise"))?;
    let scale_rows = guarded("loading kernel `scale_rows`", || module.load_function("scale_rows"))?;
    let stream = ctx.default_stream();
    guarded("creating a cuBLAS handle", || CudaBlas::new(stream))?;
    Ok(Gpu { ctx, pointwise, scale_rows, name: format!("cuda:0 ({name})") })
}

/// Why no CUDA device can be used here (no driver, no device, a library missing, a kernel
/// that would not compile): the reason `device = "auto"` falls back to the CPU with, and
/// `device = "cuda"` fails with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct CudaUnavailable(String);

/// Whether CUDA is usable here: `Ok(device description)` or `Err(reason)`.
///
/// This is the probe `device = "auto"` uses; tests call it to decide whether to run or skip the
/// GPU checks. The result is computed once per process.
pub fn cuda_probe() -> Result<String, CudaUnavailable> {
    gpu().map(|g| g.name.clone())
}

/// Full-batch trainer on a CUDA device.
#[derive(Debug, Clone)]
pub struct GpuTrainer {
    kind: ModelKind,
    config: TrainerConfig,
    gpu: Arc<Gpu>,
}

impl GpuTrainer {
    /// A CUDA trainer for `kind`, or the reason none is usable (see [`cuda_probe`]).
    pub fn new(kind: ModelKind, config: TrainerConfig) -> Result<Self, CudaUnavailable> {
        Ok(GpuTrainer { kind, config, gpu: gpu()? })
    }
}

fn cuda_err<E: std::fmt::Display>(what: &'static str) -> impl Fn(E) -> TrainError {
    move |e| TrainError::Cuda(format!("{what}: {e}"))
}

impl Trainer for GpuTrainer {
    fn train(
        &self,
        data: &TrainingData<'_>,
        init: Option<(&[f32], f32)>,
    ) -> Result<TrainedModel, TrainError> {
        let started = Instant::now();
        self.config.validate()?;
        data.validate(self.kind)?;
        let (n, d) = data.x.dim();
        let (Ok(n_i32), Ok(d_i32)) = (i32::try_from(n), i32::try_from(d)) else {
            return Err(TrainError::InvalidData(format!("{n} × {d} exceeds cuBLAS's 32-bit dimensions")));
        };
        let mut theta = initial_params(&self.config, d, init)?;

        let ctx = &self.gpu.ctx;
        ctx.bind_to_thread().map_err(cuda_err("binding the CUDA context"))?;
        let stream = ctx.new_stream().map_err(cuda_err("creating a stream"))?;
        let blas = CudaBlas::new(stream.clone()).map_err(cuda_err("creating a cuBLAS handle"))?;

        let x = data.x.as_standard_layout();
        let xs = x.as_slice().ok_or_else(|| TrainError::InvalidData("non-contiguous x".into()))?;
        let y: Vec<f32> = data.y.iter().copied().collect();
        let s: Vec<f32> = match &data.weights {
            Some(w) => w.iter().copied().collect(),
            None => vec![1.0; n],
        };
        let total_weight: f64 = s.iter().map(|v| f64::from(*v)).sum();
        let blocks = n.div_ceil(THREADS as usize).min(MAX_BLOCKS as usize) as u32;
        let upload = cuda_err("uploading the training data");
        let alloc = cuda_err("allocating device memory");
        let mut obj = GpuObjective {
            kind: self.kind,
            gpu: &self.gpu,
            stream: stream.clone(),
            blas,
            n: n_i32,
            d: d_i32,
            intercept: self.config.fit_intercept,
            total_weight,
            blocks,
            x: stream.clone_htod(xs).map_err(&upload)?,
            y: stream.clone_htod(&y).map_err(&upload)?,
            s: stream.clone_htod(&s).map_err(&upload)?,
            w: stream.alloc_zeros::<f32>(d).map_err(&alloc)?,
            z: stream.alloc_zeros::<f32>(n).map_err(&alloc)?,
            r: stream.alloc_zeros::<f32>(n).map_err(&alloc)?,
            c: stream.alloc_zeros::<f32>(n).map_err(&alloc)?,
            g: stream.alloc_zeros::<f32>(d).map_err(&alloc)?,
            partial: stream.alloc_zeros::<f64>(3 * blocks as usize).map_err(&alloc)?,
            scaled: None,
            gram: stream.alloc_zeros::<f32>(d * d).map_err(&alloc)?,
            unit_weights: data.weights.is_none(),
            cached_hessian: None,
        };
        let use_newton = self.config.solver == Solver::Newton;
        let out = fit(self.kind, &self.config, &mut obj, &mut theta, d, use_newton)?;
        drop(obj);
        stream.synchronize().map_err(cuda_err("synchronising"))?;
        finish(&theta, d, out, &self.config, self.device(), started)
    }

    fn device(&self) -> String {
        self.gpu.name.clone()
    }
}

/// Device-resident data and scratch for one fit.
struct GpuObjective<'g> {
    kind: ModelKind,
    gpu: &'g Gpu,
    stream: Arc<CudaStream>,
    blas: CudaBlas,
    n: i32,
    d: i32,
    intercept: bool,
    total_weight: f64,
    blocks: u32,
    /// Row-major `n × d`, which cuBLAS (column-major) sees as `A = Xᵀ`, a `d × n` matrix with
    /// leading dimension `d`: so `X·w` is `Aᵀ·w` (`OP_T`) and `Xᵀ·r` is `A·r` (`OP_N`).
    x: CudaSlice<f32>,
    y: CudaSlice<f32>,
    s: CudaSlice<f32>,
    w: CudaSlice<f32>,
    z: CudaSlice<f32>,
    r: CudaSlice<f32>,
    /// `√(s_i · ℓ''(z_i))`, the row scale that turns XᵀCX into a plain Gram.
    c: CudaSlice<f32>,
    g: CudaSlice<f32>,
    partial: CudaSlice<f64>,
    /// `diag(c)·X`, allocated only when a Hessian needs row scaling (an extra `n × d`).
    scaled: Option<CudaSlice<f32>>,
    gram: CudaSlice<f32>,
    unit_weights: bool,
    cached_hessian: Option<Vec<f64>>,
}

impl GpuObjective<'_> {
    /// `z = X·w`, then the pointwise kernel; returns the summed (loss, residual, curvature).
    fn forward(&mut self, theta: &[f64]) -> Result<(f64, f64, f64), TrainError> {
        let d = self.d as usize;
        let w32: Vec<f32> = theta[..d].iter().map(|v| *v as f32).collect();
        self.stream.memcpy_htod(&w32, &mut self.w).map_err(cuda_err("uploading weights"))?;
        let cfg = GemvConfig {
            trans: cublasOperation_t::CUBLAS_OP_T,
            m: self.d,
            n: self.n,
            alpha: 1.0_f32,
            lda: self.d,
            incx: 1,
            beta: 0.0_f32,
            incy: 1,
        };
        // SAFETY: x is d×n (ld d), w has d elements, z has n: the shapes cfg describes.
        unsafe { self.blas.gemv(cfg, &self.x, &self.w, &mut self.z) }.map_err(cuda_err("sgemv X·w"))?;
        let b = if self.intercept { theta[d] } else { 0.0 };
        let logistic = i32::from(self.kind == ModelKind::Logistic);
        let launch =
            LaunchConfig { grid_dim: (self.blocks, 1, 1), block_dim: (THREADS, 1, 1), shared_mem_bytes: 0 };
        let mut builder = self.stream.launch_builder(&self.gpu.pointwise);
        builder
            .arg(&self.z)
            .arg(&self.y)
            .arg(&self.s)
            .arg(&b)
            .arg(&self.n)
            .arg(&logistic)
            .arg(&mut self.r)
            .arg(&mut self.c)
            .arg(&mut self.partial);
        // SAFETY: argument types and order match `pointwise` in KERNELS; all buffers hold n
        // elements and `partial` holds 3 per block.
        unsafe { builder.launch(launch) }.map_err(cuda_err("launching `pointwise`"))?;
        let partial = self.stream.clone_dtoh(&self.partial).map_err(cuda_err("downloading partial sums"))?;
        let (mut l, mut r, mut c) = (0.0, 0.0, 0.0);
        for chunk in partial.chunks_exact(3) {
            l += chunk[0];
            r += chunk[1];
            c += chunk[2];
        }
        Ok((l, r, c))
    }
}

impl Objective for GpuObjective<'_> {
    fn eval(&mut self, theta: &[f64], grad: &mut [f64]) -> Result<f64, TrainError> {
        let d = self.d as usize;
        let (loss, rsum, _) = self.forward(theta)?;
        let cfg = GemvConfig {
            trans: cublasOperation_t::CUBLAS_OP_N,
            m: self.d,
            n: self.n,
            alpha: 1.0_f32,
            lda: self.d,
            incx: 1,
            beta: 0.0_f32,
            incy: 1,
        };
        // SAFETY: x is d×n (ld d), r has n elements, g has d.
        unsafe { self.blas.gemv(cfg, &self.x, &self.r, &mut self.g) }.map_err(cuda_err("sgemv Xᵀ·r"))?;
        let g = self.stream.clone_dtoh(&self.g).map_err(cuda_err("downloading the gradient"))?;
        let inv = 1.0 / self.total_weight;
        for (dst, src) in grad[..d].iter_mut().zip(&g) {
            *dst = f64::from(*src) * inv;
        }
        if self.intercept {
            grad[d] = rsum * inv;
        }
        Ok(loss * inv)
    }

    fn hessian(&mut self, theta: &[f64], h: &mut [f64]) -> Result<(), TrainError> {
        if let Some(cached) = &self.cached_hessian {
            h.copy_from_slice(cached);
            return Ok(());
        }
        let (d, p) = (self.d as usize, h.len().isqrt());
        let (_, _, csum) = self.forward(theta)?;
        // Unweighted least squares has c ≡ 1: the Gram of X itself, no scaled copy needed.
        let plain = self.kind == ModelKind::Linear && self.unit_weights;
        if !plain && self.scaled.is_none() {
            let buf = self
                .stream
                .alloc_zeros::<f32>(self.n as usize * d)
                .map_err(cuda_err("allocating the scaled copy of X for the Hessian"))?;
            self.scaled = Some(buf);
        }
        if let Some(scaled) = self.scaled.as_mut().filter(|_| !plain) {
            let launch = LaunchConfig {
                grid_dim: (MAX_BLOCKS, 1, 1),
                block_dim: (THREADS, 1, 1),
                shared_mem_bytes: 0,
            };
            let mut builder = self.stream.launch_builder(&self.gpu.scale_rows);
            builder.arg(&self.x).arg(&self.c).arg(&self.n).arg(&self.d).arg(scaled);
            // SAFETY: matches `scale_rows`: x and out hold n·d floats, c holds n.
            unsafe { builder.launch(launch) }.map_err(cuda_err("launching `scale_rows`"))?;
        }
        let a = match (&self.scaled, plain) {
            (Some(s), false) => s,
            _ => &self.x,
        };
        // Gram = A·Aᵀ with A the d×n column-major view: (diag(c)X)ᵀ(diag(c)X) = XᵀCX.
        let cfg = GemmConfig {
            transa: cublasOperation_t::CUBLAS_OP_N,
            transb: cublasOperation_t::CUBLAS_OP_T,
            m: self.d,
            n: self.d,
            k: self.n,
            alpha: 1.0_f32,
            lda: self.d,
            ldb: self.d,
            beta: 0.0_f32,
            ldc: self.d,
        };
        // SAFETY: a is d×n (ld d) and gram is d×d, as cfg describes.
        unsafe { self.blas.gemm(cfg, a, a, &mut self.gram) }.map_err(cuda_err("sgemm XᵀCX"))?;
        let gram = self.stream.clone_dtoh(&self.gram).map_err(cuda_err("downloading the Gram"))?;
        let inv = 1.0 / self.total_weight;
        for i in 0..d {
            for j in 0..d {
                h[i * p + j] = f64::from(gram[j * d + i]) * inv;
            }
        }
        if self.intercept {
            // Cross terms XᵀC·1 = Aᵀ-scaled rows times c: (diag(c)X)ᵀ·c, or Xᵀ·1 when plain.
            let ones;
            let v = if plain {
                ones = self.stream.clone_htod(&vec![1.0_f32; self.n as usize]).map_err(cuda_err("upload"))?;
                &ones
            } else {
                &self.c
            };
            let cfg = GemvConfig {
                trans: cublasOperation_t::CUBLAS_OP_N,
                m: self.d,
                n: self.n,
                alpha: 1.0_f32,
                lda: self.d,
                incx: 1,
                beta: 0.0_f32,
                incy: 1,
            };
            // SAFETY: a is d×n (ld d), v has n elements, g has d.
            unsafe { self.blas.gemv(cfg, a, v, &mut self.g) }.map_err(cuda_err("sgemv Xᵀc"))?;
            let cross = self.stream.clone_dtoh(&self.g).map_err(cuda_err("downloading Xᵀc"))?;
            for (j, v) in cross.iter().enumerate() {
                h[j * p + d] = f64::from(*v) * inv;
                h[d * p + j] = f64::from(*v) * inv;
            }
            h[d * p + d] = csum * inv;
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
    fn probe_never_panics_and_explains_itself() {
        match cuda_probe() {
            Ok(name) => assert!(name.starts_with("cuda:0"), "{name}"),
            Err(reason) => assert!(!reason.to_string().is_empty()),
        }
    }
}
