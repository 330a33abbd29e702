//! Feature encoding: how raw event fields become a sparse vector of weights' indices and values.
//!
//! The layout is fixed by the [`Encoding`]: numeric and boolean fields take one *dense* index
//! each, in declaration order; categorical values (and "missing" markers) are hashed into a
//! block of `2^hash_bits` indices after the dense ones (the hashing trick, as in Vowpal
//! Wabbit), so an unseen category never needs a schema change.
//!
//! Missing values are explicit rather than silently zero: a missing numeric or boolean field
//! contributes its mean (0 after standardisation) *and* a hashed "missing" indicator, so the
//! model can learn that absence itself carries signal; a missing categorical hashes a reserved
//! token.

use xxhash_rust::xxh3::xxh3_64_with_seed;

/// Reserved token hashed for a missing value; the leading NUL keeps it apart from any real
/// category string a JSON or CSV decoder can produce.
pub const MISSING_TOKEN: &[u8] = b"\0missing";

/// Smallest standard deviation used to scale a numeric feature; guards constant columns.
pub const MIN_STD: f64 = 1e-12;

/// What kind of value a feature holds, which decides how it is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FeatureKind {
    /// A real number; standardised when the encoding asks for it.
    Numeric,
    /// A string category; hashed into the sparse block.
    Categorical,
    /// `true`/`false`, encoded as 1.0/0.0 on a dense index.
    Boolean,
}

impl FeatureKind {
    /// The lowercase name used in configs and manifests.
    pub fn as_str(self) -> &'static str {
        match self {
            FeatureKind::Numeric => "numeric",
            FeatureKind::Categorical => "categorical",
            FeatureKind::Boolean => "boolean",
        }
    }
}

/// One input field of the model.
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureSpec {
    /// Field name in the event.
    pub name: String,
    /// How the field is encoded.
    pub kind: FeatureKind,
}

/// Frozen standardisation statistics of one numeric feature.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NumericStats {
    /// Mean subtracted before scaling.
    pub mean: f64,
    /// Standard deviation divided by (already clamped to at least [`MIN_STD`]).
    pub std: f64,
}

impl NumericStats {
    /// Statistics that leave values unchanged.
    pub const IDENTITY: NumericStats = NumericStats { mean: 0.0, std: 1.0 };
}

/// One non-zero entry of an encoded feature vector.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Feature {
    /// Index into the model's weights.
    pub index: u32,
    /// Value multiplied with that weight.
    pub value: f32,
}

/// A raw field value as a service or a decoder hands it to the encoder.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RawValue<'a> {
    /// A number.
    Number(f64),
    /// A string (a category).
    Text(&'a str),
    /// A boolean.
    Bool(bool),
    /// The field is absent or null.
    Missing,
}

/// Scales one numeric value. Shared by the engine's online encoder and the scorer so that both
/// round identically.
#[inline]
pub fn scale(x: f64, stats: NumericStats) -> f32 {
    ((x - stats.mean) / stats.std) as f32
}

/// Per-field hashing seed: mixing the field name into the seed keeps `color=red` and
/// `shape=red` on different indices.
#[inline]
pub fn field_seed(name: &str, seed: u64) -> u64 {
    xxh3_64_with_seed(name.as_bytes(), seed)
}

/// The complete, frozen description of how raw fields map to weight indices and values.
#[derive(Debug, Clone, PartialEq)]
pub struct Encoding {
    /// Input fields in declaration order.
    pub features: Vec<FeatureSpec>,
    /// Whether numeric features are standardised with `stats`.
    pub standardize: bool,
    /// Number of bits of the hashed block (`2^hash_bits` indices).
    pub hash_bits: u32,
    /// Seed of the hash function.
    pub hash_seed: u64,
    /// Standardisation statistics, one per feature (ignored for non-numeric features).
    pub stats: Vec<NumericStats>,
}

/// Precomputed per-feature facts derived from an [`Encoding`], so that encoding a row does no
/// hashing of field names and no lookups.
#[derive(Debug, Clone)]
pub struct EncodingPlan {
    /// For each feature: its dense index (numeric, boolean) or `u32::MAX` (categorical).
    pub dense_index: Vec<u32>,
    /// For each feature: its hashing seed.
    pub seeds: Vec<u64>,
    /// Number of dense indices.
    pub n_dense: u32,
    /// Mask applied to a hash to land in the sparse block.
    pub mask: u64,
}

impl Encoding {
    /// An encoding with identity statistics.
    pub fn new(features: Vec<FeatureSpec>, standardize: bool, hash_bits: u32, hash_seed: u64) -> Self {
        let stats = vec![NumericStats::IDENTITY; features.len()];
        Encoding { features, standardize, hash_bits, hash_seed, stats }
    }

    /// Number of dense indices (numeric and boolean features).
    pub fn n_dense(&self) -> u32 {
        self.features.iter().filter(|f| f.kind != FeatureKind::Categorical).count() as u32
    }

    /// Number of weights a model over this encoding has (bias excluded).
    pub fn dim(&self) -> usize {
        self.n_dense() as usize + (1usize << self.hash_bits)
    }

    /// Derives the per-row plan.
    pub fn plan(&self) -> EncodingPlan {
        let mut next = 0u32;
        let dense_index = self
            .features
            .iter()
            .map(|f| {
                if f.kind == FeatureKind::Categorical {
                    u32::MAX
                } else {
                    next += 1;
                    next - 1
                }
            })
            .collect();
        EncodingPlan {
            dense_index,
            seeds: self.features.iter().map(|f| field_seed(&f.name, self.hash_seed)).collect(),
            n_dense: next,
            mask: (1u64 << self.hash_bits) - 1,
        }
    }

    /// Position of a feature by name.
    pub fn position(&self, name: &str) -> Option<usize> {
        self.features.iter().position(|f| f.name == name)
    }

    /// Encodes one row given in feature order (`values[i]` belongs to `features[i]`), appending
    /// to `out`. Values of the wrong kind are treated as missing, so a scorer fed a bad request
    /// degrades instead of failing.
    pub fn encode_into(&self, plan: &EncodingPlan, values: &[RawValue<'_>], out: &mut Vec<Feature>) {
        for (i, spec) in self.features.iter().enumerate() {
            let value = values.get(i).copied().unwrap_or(RawValue::Missing);
            match (spec.kind, value) {
                (FeatureKind::Numeric, RawValue::Number(x)) if x.is_finite() => {
                    out.push(plan.numeric(i, x, self.stats[i], self.standardize))
                }
                (FeatureKind::Boolean, RawValue::Bool(b)) => out.push(plan.boolean(i, b)),
                (FeatureKind::Categorical, RawValue::Text(s)) => out.push(plan.categorical(i, s.as_bytes())),
                (FeatureKind::Categorical, RawValue::Number(x)) => {
                    // A numeric-looking category (e.g. a zip code read as a number) hashes its
                    // canonical decimal form, the same text a CSV decoder would have produced.
                    out.push(plan.categorical(i, format_number(x).as_bytes()))
                }
                (FeatureKind::Categorical, RawValue::Bool(b)) => {
                    out.push(plan.categorical(i, if b { b"true" } else { b"false" }))
                }
                _ => plan.missing(i, out),
            }
        }
    }
}

/// Canonical text of a number used as a category: integers without a fraction.
pub fn format_number(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{}", x as i64)
    } else {
        format!("{x}")
    }
}

impl EncodingPlan {
    /// Entry of numeric feature `i` with raw value `x`.
    #[inline]
    pub fn numeric(&self, i: usize, x: f64, stats: NumericStats, standardize: bool) -> Feature {
        let value = if standardize { scale(x, stats) } else { x as f32 };
        Feature { index: self.dense_index[i], value }
    }

    /// Entry of boolean feature `i`.
    #[inline]
    pub fn boolean(&self, i: usize, b: bool) -> Feature {
        Feature { index: self.dense_index[i], value: if b { 1.0 } else { 0.0 } }
    }

    /// Entry of categorical feature `i` with value bytes `v`.
    #[inline]
    pub fn categorical(&self, i: usize, v: &[u8]) -> Feature {
        Feature { index: self.hashed(i, v), value: 1.0 }
    }

    /// Entries for a missing feature `i`: the mean (0) on its dense index, if it has one, plus
    /// the hashed missing indicator.
    #[inline]
    pub fn missing(&self, i: usize, out: &mut Vec<Feature>) {
        if self.dense_index[i] != u32::MAX {
            out.push(Feature { index: self.dense_index[i], value: 0.0 });
        }
        out.push(Feature { index: self.hashed(i, MISSING_TOKEN), value: 1.0 });
    }

    #[inline]
    fn hashed(&self, i: usize, v: &[u8]) -> u32 {
        self.n_dense + (xxh3_64_with_seed(v, self.seeds[i]) & self.mask) as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc() -> Encoding {
        Encoding::new(
            vec![
                FeatureSpec { name: "x".into(), kind: FeatureKind::Numeric },
                FeatureSpec { name: "color".into(), kind: FeatureKind::Categorical },
                FeatureSpec { name: "flag".into(), kind: FeatureKind::Boolean },
            ],
            true,
            4,
            7,
        )
    }

    #[test]
    fn layout_puts_dense_first_and_hashes_after() {
        let e = enc();
        let plan = e.plan();
        assert_eq!(plan.dense_index, vec![0, u32::MAX, 1]);
        assert_eq!(e.dim(), 2 + 16);
        let mut out = Vec::new();
        e.encode_into(&plan, &[RawValue::Number(2.0), RawValue::Text("red"), RawValue::Bool(true)], &mut out);
        assert_eq!(out.len(), 3);
        assert_eq!(out[0], Feature { index: 0, value: 2.0 });
        assert!(out[1].index >= 2 && out[1].index < 18);
        assert_eq!(out[2], Feature { index: 1, value: 1.0 });
    }

    #[test]
    fn missing_values_are_explicit() {
        let e = enc();
        let plan = e.plan();
        let mut out = Vec::new();
        e.encode_into(&plan, &[RawValue::Missing, RawValue::Missing, RawValue::Missing], &mut out);
        // numeric: mean + indicator; categorical: indicator; boolean: 0 + indicator.
        assert_eq!(out.len(), 5);
        assert_eq!(out[0], Feature { index: 0, value: 0.0 });
        let mut nan = Vec::new();
        e.encode_into(&plan, &[RawValue::Number(f64::NAN)], &mut nan);
        assert_eq!(nan[..2], out[..2], "a NaN numeric is encoded as missing");
    }

    #[test]
    fn field_name_separates_equal_categories() {
        let e = Encoding::new(
            vec![
                FeatureSpec { name: "a".into(), kind: FeatureKind::Categorical },
                FeatureSpec { name: "b".into(), kind: FeatureKind::Categorical },
            ],
            false,
            20,
            1,
        );
        let plan = e.plan();
        assert_ne!(plan.categorical(0, b"red").index, plan.categorical(1, b"red").index);
    }
}
