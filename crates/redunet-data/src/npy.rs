//! NumPy `.npy` arrays: read floats (f32, f64) and integers of any width,
//! either byte order, C or Fortran order; write f32 arrays atomically.

use crate::{DataError, Result};
use std::io::Write;
use std::path::Path;

/// An array read from a `.npy` file, converted to row-major order.
#[derive(Debug, Clone, PartialEq)]
pub struct NpyArray<T> {
    /// The array's shape.
    pub shape: Vec<usize>,
    /// The values, row-major.
    pub data: Vec<T>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Float,
    Int,
    Uint,
    Bool,
}

struct Header {
    kind: Kind,
    size: usize,
    big_endian: bool,
    fortran: bool,
    shape: Vec<usize>,
    offset: usize,
}

fn corrupt(path: &Path, reason: impl Into<String>) -> DataError {
    DataError::Corrupt {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

fn read_bytes(path: &Path) -> Result<Vec<u8>> {
    crate::read_bounded(path)
}

fn parse_header(bytes: &[u8]) -> std::result::Result<Header, String> {
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return Err("not a .npy file (missing \\x93NUMPY magic)".into());
    }
    let major = bytes[6];
    let (len, start) = match major {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 => {
            if bytes.len() < 12 {
                return Err("truncated header".into());
            }
            (
                u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
                12,
            )
        }
        v => return Err(format!("unsupported .npy version {v}")),
    };
    let end = start + len;
    let text = bytes
        .get(start..end)
        .ok_or("truncated header")
        .and_then(|b| std::str::from_utf8(b).map_err(|_| "header is not text"))?;
    let descr = dict_value(text, "descr").ok_or("header has no 'descr'")?;
    let descr = descr.trim_matches(|c| c == '\'' || c == '"');
    let fortran = match dict_value(text, "fortran_order").as_deref() {
        Some("True") => true,
        Some("False") => false,
        _ => return Err("header has no valid 'fortran_order'".into()),
    };
    let shape_text = dict_value(text, "shape").ok_or("header has no 'shape'")?;
    let shape = shape_text
        .trim_matches(|c| c == '(' || c == ')')
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<usize>()
                .map_err(|_| format!("bad shape {shape_text}"))
        })
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let mut chars = descr.chars();
    let order = chars.next().ok_or("empty descr")?;
    let big_endian = match order {
        '<' | '|' | '=' => false,
        '>' => true,
        _ => return Err(format!("unsupported dtype {descr}")),
    };
    let kind = match chars.next() {
        Some('f') => Kind::Float,
        Some('i') => Kind::Int,
        Some('u') => Kind::Uint,
        Some('b') => Kind::Bool,
        _ => {
            return Err(format!(
                "unsupported dtype {descr} (need float, int or bool)"
            ));
        }
    };
    let size: usize = chars
        .as_str()
        .parse()
        .map_err(|_| format!("unsupported dtype {descr}"))?;
    let ok = match kind {
        Kind::Float => size == 4 || size == 8,
        Kind::Int | Kind::Uint => matches!(size, 1 | 2 | 4 | 8),
        Kind::Bool => size == 1,
    };
    if !ok {
        return Err(format!("unsupported dtype {descr}"));
    }
    Ok(Header {
        kind,
        size,
        big_endian,
        fortran,
        shape,
        offset: end,
    })
}

/// The text of `'key': value` in a Python dict literal, up to the next
/// top-level comma.
fn dict_value(text: &str, key: &str) -> Option<String> {
    let pat = format!("'{key}'");
    let at = text.find(&pat)? + pat.len();
    let rest = text[at..].trim_start().strip_prefix(':')?.trim_start();
    let mut depth = 0i32;
    let mut out = String::new();
    for c in rest.chars() {
        match c {
            '(' | '[' => depth += 1,
            ')' | ']' => depth -= 1,
            ',' | '}' if depth == 0 => break,
            _ => {}
        }
        out.push(c);
    }
    Some(out.trim().to_string())
}

fn element_bytes<'a>(bytes: &'a [u8], h: &Header, path: &Path) -> Result<(&'a [u8], usize)> {
    // Checked, so that a forged shape cannot wrap around to the file's size.
    let (count, needed) = h
        .shape
        .iter()
        .try_fold(1usize, |a, &n| a.checked_mul(n))
        .and_then(|count| Some((count, count.checked_mul(h.size)?)))
        .ok_or_else(|| corrupt(path, format!("shape {:?} overflows", h.shape)))?;
    let body = &bytes[h.offset.min(bytes.len())..];
    if body.len() != needed {
        return Err(corrupt(
            path,
            format!(
                "shape {:?} needs {needed} data bytes, file has {}",
                h.shape,
                body.len()
            ),
        ));
    }
    Ok((body, count))
}

fn word(chunk: &[u8], big_endian: bool) -> [u8; 8] {
    let mut w = [0u8; 8];
    if big_endian {
        for (i, b) in chunk.iter().rev().enumerate() {
            w[i] = *b;
        }
    } else {
        w[..chunk.len()].copy_from_slice(chunk);
    }
    w
}

/// Converts Fortran (column-major) data to row-major.
fn to_row_major<T: Copy>(data: Vec<T>, shape: &[usize]) -> Vec<T> {
    if shape.len() < 2 {
        return data;
    }
    let n = data.len();
    let mut out = Vec::with_capacity(n);
    let mut idx = vec![0usize; shape.len()];
    // Column-major strides.
    let mut strides = vec![1usize; shape.len()];
    for i in 1..shape.len() {
        strides[i] = strides[i - 1] * shape[i - 1];
    }
    for _ in 0..n {
        let off: usize = idx.iter().zip(&strides).map(|(i, s)| i * s).sum();
        out.push(data[off]);
        for d in (0..shape.len()).rev() {
            idx[d] += 1;
            if idx[d] < shape[d] {
                break;
            }
            idx[d] = 0;
        }
    }
    out
}

/// Reads a floating-point `.npy` array (f32 or f64; integers are accepted
/// and converted) as f32.
pub fn read_npy_f32(path: &Path) -> Result<NpyArray<f32>> {
    let bytes = read_bytes(path)?;
    let h = parse_header(&bytes).map_err(|r| corrupt(path, r))?;
    let (body, count) = element_bytes(&bytes, &h, path)?;
    let mut data = Vec::with_capacity(count);
    for c in body.chunks_exact(h.size) {
        let w = word(c, h.big_endian);
        let v = match (h.kind, h.size) {
            (Kind::Float, 4) => f32::from_le_bytes([w[0], w[1], w[2], w[3]]),
            (Kind::Float, 8) => f64::from_le_bytes(w) as f32,
            _ => int_value(h.kind, h.size, w) as f32,
        };
        data.push(v);
    }
    Ok(NpyArray {
        data: if h.fortran {
            to_row_major(data, &h.shape)
        } else {
            data
        },
        shape: h.shape,
    })
}

fn int_value(kind: Kind, size: usize, w: [u8; 8]) -> i128 {
    let u = u64::from_le_bytes(w);
    match kind {
        Kind::Uint | Kind::Bool => u as i128,
        _ => {
            let shift = 64 - 8 * size as u32;
            (((u << shift) as i64) >> shift) as i128
        }
    }
}

/// Reads an integer `.npy` array of any width and signedness as i64. Float
/// arrays are accepted only when every value is integral.
pub fn read_npy_i64(path: &Path) -> Result<NpyArray<i64>> {
    let bytes = read_bytes(path)?;
    let h = parse_header(&bytes).map_err(|r| corrupt(path, r))?;
    let (body, count) = element_bytes(&bytes, &h, path)?;
    let mut data = Vec::with_capacity(count);
    for c in body.chunks_exact(h.size) {
        let w = word(c, h.big_endian);
        let v = match (h.kind, h.size) {
            (Kind::Float, _) => {
                let f = if h.size == 4 {
                    f32::from_le_bytes([w[0], w[1], w[2], w[3]]) as f64
                } else {
                    f64::from_le_bytes(w)
                };
                if !f.is_finite() || f.fract() != 0.0 {
                    return Err(corrupt(path, format!("label value {f} is not an integer")));
                }
                f as i64
            }
            _ => {
                let i = int_value(h.kind, h.size, w);
                i64::try_from(i).map_err(|_| corrupt(path, format!("label {i} overflows i64")))?
            }
        };
        data.push(v);
    }
    Ok(NpyArray {
        data: if h.fortran {
            to_row_major(data, &h.shape)
        } else {
            data
        },
        shape: h.shape,
    })
}

/// The bytes of a little-endian f32 `.npy` file (version 1.0).
pub fn npy_f32_bytes(shape: &[usize], data: &[f32]) -> Vec<u8> {
    let bytes: Vec<u8> = data.iter().flat_map(|v| v.to_le_bytes()).collect();
    npy_bytes("<f4", shape, &bytes)
}

/// The bytes of a little-endian int64 `.npy` file (version 1.0).
pub fn npy_i64_bytes(shape: &[usize], data: &[i64]) -> Vec<u8> {
    let bytes: Vec<u8> = data.iter().flat_map(|v| v.to_le_bytes()).collect();
    npy_bytes("<i8", shape, &bytes)
}

fn npy_bytes(descr: &str, shape: &[usize], data: &[u8]) -> Vec<u8> {
    let shape_text = match shape.len() {
        1 => format!("({},)", shape[0]),
        _ => format!(
            "({})",
            shape
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let mut header =
        format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape_text}, }}");
    // Pad so that the data starts on a 64-byte boundary, as NumPy does.
    let unpadded = 10 + header.len() + 1;
    header.push_str(&" ".repeat((64 - unpadded % 64) % 64));
    header.push('\n');
    let mut out = Vec::with_capacity(10 + header.len() + data.len());
    out.extend_from_slice(b"\x93NUMPY\x01\x00");
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(data);
    out
}

/// Writes an f32 array as `.npy`, atomically (a temporary file in the same
/// folder, then a rename).
pub fn write_npy_f32(path: &Path, shape: &[usize], data: &[f32]) -> Result<()> {
    let n: usize = shape.iter().product();
    if n != data.len() {
        return Err(DataError::Shape(format!(
            "shape {shape:?} holds {n} values, got {}",
            data.len()
        )));
    }
    write_atomic(path, &npy_f32_bytes(shape, data))
}

/// Writes an int64 array as `.npy`, atomically.
pub fn write_npy_i64(path: &Path, shape: &[usize], data: &[i64]) -> Result<()> {
    let n: usize = shape.iter().product();
    if n != data.len() {
        return Err(DataError::Shape(format!(
            "shape {shape:?} holds {n} values, got {}",
            data.len()
        )));
    }
    write_atomic(path, &npy_i64_bytes(shape, data))
}

/// Writes `bytes` to `path` through a temporary sibling file and a rename, so
/// that a reader never sees a half-written file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let io = |source| DataError::Io {
        action: "write",
        path: path.to_path_buf(),
        source,
    };
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .ok_or_else(|| DataError::Invalid(format!("{} is not a file path", path.display())))?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn npy(descr: &str, fortran: bool, shape: &str, body: &[u8]) -> Vec<u8> {
        let h = format!(
            "{{'descr': '{descr}', 'fortran_order': {}, 'shape': {shape}, }}\n",
            if fortran { "True" } else { "False" }
        );
        let mut b = b"\x93NUMPY\x01\x00".to_vec();
        b.extend_from_slice(&(h.len() as u16).to_le_bytes());
        b.extend_from_slice(h.as_bytes());
        b.extend_from_slice(body);
        b
    }

    #[test]
    fn round_trips_f32() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.npy");
        write_npy_f32(&p, &[2, 3], &[1., 2., 3., 4., 5., 6.]).unwrap();
        let a = read_npy_f32(&p).unwrap();
        assert_eq!(a.shape, vec![2, 3]);
        assert_eq!(a.data, vec![1., 2., 3., 4., 5., 6.]);
    }

    #[test]
    fn reads_f64_fortran_and_integer_labels() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f.npy");
        let body: Vec<u8> = [1.0f64, 4., 2., 5., 3., 6.]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        std::fs::write(&p, npy("<f8", true, "(2, 3)", &body)).unwrap();
        assert_eq!(read_npy_f32(&p).unwrap().data, vec![1., 2., 3., 4., 5., 6.]);

        let q = dir.path().join("l.npy");
        let body: Vec<u8> = [3i16, -1, 7].iter().flat_map(|v| v.to_be_bytes()).collect();
        std::fs::write(&q, npy(">i2", false, "(3,)", &body)).unwrap();
        assert_eq!(read_npy_i64(&q).unwrap().data, vec![3, -1, 7]);

        let r = dir.path().join("u.npy");
        std::fs::write(&r, npy("|u1", false, "(3,)", &[0, 9, 255])).unwrap();
        assert_eq!(read_npy_i64(&r).unwrap().data, vec![0, 9, 255]);
    }

    #[test]
    fn rejects_corrupt_files() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("bad.npy");
        std::fs::write(&p, npy("<f4", false, "(2, 3)", &[0u8; 8])).unwrap();
        assert!(matches!(read_npy_f32(&p), Err(DataError::Corrupt { .. })));
        std::fs::write(&p, b"hello world, not numpy").unwrap();
        assert!(matches!(read_npy_f32(&p), Err(DataError::Corrupt { .. })));
        std::fs::write(&p, npy("<c8", false, "(1,)", &[0u8; 8])).unwrap();
        assert!(matches!(read_npy_f32(&p), Err(DataError::Corrupt { .. })));
        assert!(matches!(
            read_npy_f32(&dir.path().join("missing.npy")),
            Err(DataError::Io { .. })
        ));
    }
}
