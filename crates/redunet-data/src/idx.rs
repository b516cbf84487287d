//! IDX files, the format of MNIST and Fashion-MNIST, raw or gzip-compressed.
//!
//! Layout: two zero bytes, a type byte (0x08 = u8), the number of dimensions,
//! then each dimension as a big-endian u32, then the data in row-major order.

use crate::{DataError, Result};
use std::io::Read;
use std::path::Path;

/// An IDX array of unsigned bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct IdxArray {
    /// The dimensions the header declares.
    pub shape: Vec<usize>,
    /// The bytes, row-major.
    pub data: Vec<u8>,
}

/// Reads an IDX file of type u8; a name ending in `.gz` is decompressed.
pub fn read_idx(path: &Path) -> Result<IdxArray> {
    let raw = crate::read_bounded(path)?;
    idx_from_bytes(&raw, path)
}

/// Parses IDX bytes, gzip-compressed or not; `path` only names the source in
/// errors.
pub fn idx_from_bytes(raw: &[u8], path: &Path) -> Result<IdxArray> {
    if raw.starts_with(&[0x1f, 0x8b]) {
        let bytes = gunzip_idx(raw).map_err(|reason| corrupt(path, reason))?;
        parse_idx(&bytes).map_err(|reason| corrupt(path, reason))
    } else {
        parse_idx(raw).map_err(|reason| corrupt(path, reason))
    }
}

/// Deflate expands at most 1032:1; a header claiming more than that is
/// forged, and is refused before anything is decompressed.
const MAX_GZIP_RATIO: usize = 1032;

/// Decompresses a gzip IDX file, reading its header first and then no more
/// than the data it declares (plus one byte, to detect trailing data), so a
/// small file cannot expand into gigabytes before its error.
fn gunzip_idx(raw: &[u8]) -> std::result::Result<Vec<u8>, String> {
    let gz = |e: std::io::Error| format!("gzip: {e}");
    let mut dec = flate2::read::GzDecoder::new(raw);
    let mut head = vec![0u8; 4];
    dec.read_exact(&mut head).map_err(gz)?;
    let ndim = head[3] as usize;
    let mut dims = vec![0u8; 4 * ndim];
    dec.read_exact(&mut dims).map_err(gz)?;
    head.extend_from_slice(&dims);
    let count = dims
        .chunks_exact(4)
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
        .try_fold(1usize, |acc, n| acc.checked_mul(n))
        .ok_or("IDX dimensions overflow")?;
    if count / MAX_GZIP_RATIO > raw.len() {
        return Err(format!(
            "IDX header declares {count} bytes of data, more than {} compressed bytes can hold",
            raw.len()
        ));
    }
    crate::memory::check(count as u64, "the IDX data", "a smaller file")
        .map_err(|e| e.to_string())?;
    let mut out = head;
    dec.take(count as u64 + 1)
        .read_to_end(&mut out)
        .map_err(gz)?;
    Ok(out)
}

fn corrupt(path: &Path, reason: String) -> DataError {
    DataError::Corrupt {
        path: path.to_path_buf(),
        reason,
    }
}

/// Parses the bytes of an uncompressed IDX file.
pub fn parse_idx(bytes: &[u8]) -> std::result::Result<IdxArray, String> {
    if bytes.len() < 4 {
        return Err("shorter than the 4-byte IDX magic".into());
    }
    if bytes[0] != 0 || bytes[1] != 0 {
        return Err("not an IDX file (magic must start with two zero bytes)".into());
    }
    if bytes[2] != 0x08 {
        return Err(format!(
            "IDX element type 0x{:02x} is not supported (only 0x08, unsigned bytes)",
            bytes[2]
        ));
    }
    let ndim = bytes[3] as usize;
    if ndim == 0 {
        return Err("IDX file declares zero dimensions".into());
    }
    let header = 4 + 4 * ndim;
    if bytes.len() < header {
        return Err("truncated IDX header".into());
    }
    let shape: Vec<usize> = (0..ndim)
        .map(|i| {
            let b = &bytes[4 + 4 * i..8 + 4 * i];
            u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize
        })
        .collect();
    let count = shape
        .iter()
        .try_fold(1usize, |acc, &n| acc.checked_mul(n))
        .ok_or("IDX dimensions overflow")?;
    let body = &bytes[header..];
    if body.len() != count {
        return Err(format!(
            "IDX shape {shape:?} needs {count} data bytes, file has {}",
            body.len()
        ));
    }
    crate::memory::check(count as u64, "the IDX data", "a smaller file")
        .map_err(|e| e.to_string())?;
    Ok(IdxArray {
        shape,
        data: body.to_vec(),
    })
}

/// Reads an IDX image file and its label file into a [`crate::Dataset`] with
/// pixels scaled to `[0, 1]` (byte / 255).
pub fn read_idx_dataset(images: &Path, labels: &Path) -> Result<crate::Dataset> {
    to_dataset(read_idx(images)?, read_idx(labels)?, images, labels)
}

/// [`read_idx_dataset`] from bytes in memory; `name` names them in errors.
pub fn idx_dataset_from_bytes(images: &[u8], labels: &[u8], name: &Path) -> Result<crate::Dataset> {
    to_dataset(
        idx_from_bytes(images, name)?,
        idx_from_bytes(labels, name)?,
        name,
        name,
    )
}

fn to_dataset(
    img: IdxArray,
    lab: IdxArray,
    images: &Path,
    labels: &Path,
) -> Result<crate::Dataset> {
    if img.shape.len() < 2 {
        return Err(corrupt(
            images,
            format!("image file has shape {:?}", img.shape),
        ));
    }
    if lab.shape.len() != 1 {
        return Err(corrupt(
            labels,
            format!("label file has shape {:?}", lab.shape),
        ));
    }
    if img.shape[0] != lab.shape[0] {
        return Err(DataError::Shape(format!(
            "{} images but {} labels",
            img.shape[0], lab.shape[0]
        )));
    }
    let features = img.data.iter().map(|&b| b as f32 / 255.0).collect();
    let labels = lab.data.iter().map(|&b| b as usize).collect();
    crate::Dataset::new(features, img.shape[1..].to_vec(), labels)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn idx_bytes(shape: &[u32], data: &[u8]) -> Vec<u8> {
        let mut b = vec![0, 0, 8, shape.len() as u8];
        for s in shape {
            b.extend_from_slice(&s.to_be_bytes());
        }
        b.extend_from_slice(data);
        b
    }

    #[test]
    fn parses_a_small_array() {
        let a = parse_idx(&idx_bytes(&[2, 3], &[1, 2, 3, 4, 5, 6])).unwrap();
        assert_eq!(a.shape, vec![2, 3]);
        assert_eq!(a.data, vec![1, 2, 3, 4, 5, 6]);
    }

    #[test]
    fn rejects_truncated_and_foreign_files() {
        assert!(parse_idx(&idx_bytes(&[2, 3], &[1, 2, 3])).is_err());
        assert!(parse_idx(b"\x89PNG....").is_err());
        assert!(parse_idx(&[0, 0, 0x0d, 1, 0, 0, 0, 1, 0, 0, 0, 0]).is_err());
        assert!(parse_idx(&[0, 0]).is_err());
    }
}
