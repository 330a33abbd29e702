//! Fuzzes the snapshot loader: `cargo +nightly fuzz run load_snapshot` (from `scorer/`).
//!
//! The first byte picks the mode. Raw mode feeds the bytes as a whole file (header parsing,
//! checksums). Framed mode wraps the rest in a header with correct checksums, so mutations
//! reach rkyv's archive validation and the semantic checks, which a checksum would otherwise
//! shield from almost every input. Either way the loader must return an error or a model that
//! scores without panicking.
#![no_main]

use eddy_scorer::encoding::Feature;
use eddy_scorer::snapshot::{frame_payload, LoadedModel, Validation};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    let bytes = if mode & 1 == 0 { rest.to_vec() } else { frame_payload(u64::from(mode >> 1), rest) };
    for validation in [Validation::Full, Validation::Structural] {
        if let Ok(model) = LoadedModel::from_bytes(&bytes, validation) {
            let _ = model.score_sparse(&[Feature { index: 0, value: 1.0 }, Feature { index: u32::MAX, value: 1.0 }]);
            let _ = model.score_dense(&[1.0; 4]);
            let mut row = Vec::new();
            model.encode_ordered(&[], &mut row);
            let _ = model.score_sparse(&row);
        }
    }
});
