//! Compact serde encodings for the large arrays of checkpointed state.
//!
//! A checkpoint holds up to millions of encoded features and join entries; written field by
//! field as self-describing MessagePack they would cost several times their size and most of
//! the checkpoint's time. These helpers write each array as one byte string of fixed-width
//! little-endian records instead (`#[serde(with = "...")]`), which is both compact and fast.

use std::collections::VecDeque;

use eddy_scorer::encoding::Feature;
use serde::de::{Error as _, Visitor};
use serde::{Deserializer, Serializer};

struct Bytes;

impl Visitor<'_> for Bytes {
    type Value = Vec<u8>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a byte string")
    }

    fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
        Ok(v.to_vec())
    }

    fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
        Ok(v)
    }
}

fn records<'de, D: Deserializer<'de>>(d: D, width: usize) -> Result<Vec<u8>, D::Error> {
    let bytes = d.deserialize_byte_buf(Bytes)?;
    if bytes.len() % width != 0 {
        return Err(D::Error::custom(format!(
            "{} bytes is not a whole number of {width}-byte records",
            bytes.len()
        )));
    }
    Ok(bytes)
}

fn u32_at(b: &[u8], i: usize) -> u32 {
    u32::from_le_bytes(b[i..i + 4].try_into().expect("4 bytes"))
}

fn u64_at(b: &[u8], i: usize) -> u64 {
    u64::from_le_bytes(b[i..i + 8].try_into().expect("8 bytes"))
}

/// `Vec<Feature>` as 8-byte records (index, value bits).
pub(crate) mod features {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(v: &[Feature], s: S) -> Result<S::Ok, S::Error> {
        let mut buf = Vec::with_capacity(v.len() * 8);
        for f in v {
            buf.extend_from_slice(&f.index.to_le_bytes());
            buf.extend_from_slice(&f.value.to_bits().to_le_bytes());
        }
        s.serialize_bytes(&buf)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Feature>, D::Error> {
        let b = records(d, 8)?;
        Ok(b.chunks_exact(8)
            .map(|c| Feature { index: u32_at(c, 0), value: f32::from_bits(u32_at(c, 4)) })
            .collect())
    }
}

/// `Vec<f32>` as 4-byte records (bits).
pub(crate) mod floats {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(v: &[f32], s: S) -> Result<S::Ok, S::Error> {
        let mut buf = Vec::with_capacity(v.len() * 4);
        for x in v {
            buf.extend_from_slice(&x.to_bits().to_le_bytes());
        }
        s.serialize_bytes(&buf)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<f32>, D::Error> {
        let b = records(d, 4)?;
        Ok(b.chunks_exact(4).map(|c| f32::from_bits(u32_at(c, 0))).collect())
    }
}

/// A fixed-width record of plain integers, for [`deque`].
pub(crate) trait Record: Sized {
    /// Bytes per record.
    const WIDTH: usize;
    /// Appends the record.
    fn put(&self, out: &mut Vec<u8>);
    /// Reads one record of `WIDTH` bytes.
    fn get(b: &[u8]) -> Self;
}

/// `VecDeque<R>` of fixed-width records.
pub(crate) mod deque {
    use super::*;

    pub(crate) fn serialize<R: Record, S: Serializer>(v: &VecDeque<R>, s: S) -> Result<S::Ok, S::Error> {
        let mut buf = Vec::with_capacity(v.len() * R::WIDTH);
        for r in v {
            r.put(&mut buf);
        }
        s.serialize_bytes(&buf)
    }

    pub(crate) fn deserialize<'de, R: Record, D: Deserializer<'de>>(d: D) -> Result<VecDeque<R>, D::Error> {
        let b = records(d, R::WIDTH)?;
        Ok(b.chunks_exact(R::WIDTH).map(R::get).collect())
    }
}

/// Reads the little-endian `u64` at byte `i` (for [`Record`] implementations).
pub(crate) fn read_u64(b: &[u8], i: usize) -> u64 {
    u64_at(b, i)
}

/// Reads the little-endian `u32` at byte `i` (for [`Record`] implementations).
pub(crate) fn read_u32(b: &[u8], i: usize) -> u32 {
    u32_at(b, i)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::{Deserialize, Serialize};

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Holder {
        #[serde(with = "features")]
        f: Vec<Feature>,
        #[serde(with = "floats")]
        p: Vec<f32>,
    }

    #[test]
    fn round_trips_bit_for_bit() {
        let h = Holder {
            f: vec![Feature { index: 7, value: -0.0 }, Feature { index: u32::MAX, value: f32::MIN_POSITIVE }],
            p: vec![f32::NAN, 1.5, -3.25e-30],
        };
        let bytes = rmp_serde::to_vec_named(&h).unwrap();
        let back: Holder = rmp_serde::from_slice(&bytes).unwrap();
        assert_eq!(back.f.len(), 2);
        assert_eq!(back.f[0].value.to_bits(), (-0.0f32).to_bits());
        assert_eq!(back.f[1], h.f[1]);
        assert_eq!(
            back.p.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
            h.p.iter().map(|x| x.to_bits()).collect::<Vec<_>>()
        );
        assert!(rmp_serde::from_slice::<Holder>(&rmp_serde::to_vec_named(&(1, 2)).unwrap()).is_err());
    }
}
