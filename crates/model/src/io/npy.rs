//! NumPy `.npy` files (format versions 1.0 to 3.0): read any real numeric dtype
//! into an `f64` [`Tensor`], write `f32` or `f64`.

use std::path::Path;

use crate::error::{ModelError, Result};
use crate::tensor::Tensor;

const MAGIC: &[u8] = b"\x93NUMPY";

/// Element type written by [`write_npy`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NpyDtype {
    /// Little-endian 32-bit float (`<f4`): half the size, enough for inputs.
    F32,
    /// Little-endian 64-bit float (`<f8`): lossless for the evaluator's values.
    F64,
}

/// Reads a `.npy` file into a row-major `f64` tensor.
///
/// # Errors
/// [`ModelError::Io`] when the file cannot be read; the errors of
/// [`parse_npy`] when its contents are not a supported array.
pub fn read_npy(path: &Path) -> Result<Tensor> {
    let bytes = std::fs::read(path).map_err(crate::error::io(path))?;
    parse_npy(&bytes, path)
}

/// Parses `.npy` bytes; `origin` names the file (or archive member) in errors.
/// Fortran-ordered arrays are reordered to row-major.
///
/// # Errors
/// [`ModelError::Npy`] for a missing magic string, an unsupported format
/// version, a malformed or truncated header, a dtype that is not a real
/// number type, or fewer data bytes than the shape needs.
pub fn parse_npy(bytes: &[u8], origin: &Path) -> Result<Tensor> {
    let fail = |message: String| ModelError::Npy {
        path: origin.to_path_buf(),
        message,
    };
    if bytes.len() < 10 || &bytes[..6] != MAGIC {
        return Err(fail("not a .npy file (missing \\x93NUMPY magic)".into()));
    }
    let major = bytes[6];
    let (header_len, header_start) = match major {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 => {
            if bytes.len() < 12 {
                return Err(fail("truncated header".into()));
            }
            let len = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
            (len as usize, 12)
        }
        v => return Err(fail(format!("unsupported .npy format version {v}"))),
    };
    let header_end = header_start + header_len;
    let header = bytes
        .get(header_start..header_end)
        .ok_or_else(|| fail("truncated header".into()))?;
    let header = std::str::from_utf8(header).map_err(|_| fail("header is not text".into()))?;
    let descr = header_value(header, "descr")
        .and_then(quoted)
        .ok_or_else(|| fail(format!("header has no 'descr': {header}")))?;
    let fortran = match header_value(header, "fortran_order") {
        Some(v) if v.starts_with("True") => true,
        Some(v) if v.starts_with("False") => false,
        _ => return Err(fail("header has no 'fortran_order'".into())),
    };
    let shape = header_value(header, "shape")
        .and_then(parse_shape)
        .ok_or_else(|| fail(format!("header has no valid 'shape': {header}")))?;
    let element = ElementType::parse(descr).ok_or_else(|| {
        fail(format!(
            "unsupported dtype '{descr}' (expected a real number type)"
        ))
    })?;
    // Checked: a shape read from the file whose product overflows would
    // otherwise wrap to a small count (found by the `npy` fuzz target).
    // Dimensions of 0 count as 1 here: the strides of the others must fit
    // too (a fuzzed `(0, 2^35, 2^35)` overflowed them).
    let needed = crate::tensor::checked_volume(&shape)
        .and_then(|n| n.checked_mul(element.size))
        .ok_or_else(|| fail(format!("shape {shape:?} has more elements than memory")))?;
    let body = &bytes[header_end..];
    if body.len() < needed {
        return Err(fail(format!(
            "truncated data: shape {shape:?} of {descr} needs {needed} bytes, file has {}",
            body.len()
        )));
    }
    let data: Vec<f64> = body[..needed]
        .chunks_exact(element.size)
        .map(|chunk| element.decode(chunk))
        .collect();
    let tensor = Tensor::new(shape.clone(), data);
    Ok(if fortran && shape.len() > 1 {
        from_fortran_order(&tensor)
    } else {
        tensor
    })
}

/// Writes a tensor as a version 1.0 `.npy` file.
///
/// # Errors
/// [`ModelError::Io`] when the file cannot be written.
pub fn write_npy(path: &Path, tensor: &Tensor, dtype: NpyDtype) -> Result<()> {
    std::fs::write(path, encode_npy(tensor, dtype)).map_err(crate::error::io(path))
}

/// Writes named tensors as an `.npz` archive (what `numpy.savez` writes:
/// one stored `.npy` per array, `numpy.load(path)[name]` reads each back).
///
/// # Errors
/// [`ModelError::Io`] when the file cannot be written.
pub fn write_npz(path: &Path, arrays: &[(&str, &Tensor)], dtype: NpyDtype) -> Result<()> {
    use std::io::Write;
    let to_io = |e: zip::result::ZipError| std::io::Error::other(e.to_string());
    let file = std::fs::File::create(path).map_err(crate::error::io(path))?;
    let mut archive = zip::ZipWriter::new(std::io::BufWriter::new(file));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Stored)
        .large_file(true);
    let written = arrays
        .iter()
        .try_for_each(|(name, tensor)| {
            archive
                .start_file(format!("{name}.npy"), options)
                .map_err(to_io)?;
            archive.write_all(&encode_npy(tensor, dtype))
        })
        .and_then(|()| archive.finish().map_err(to_io)?.flush());
    written.map_err(crate::error::io(path))
}

/// The bytes of a version 1.0 `.npy` file holding `tensor` as `dtype`, with
/// the data aligned to 64 bytes as NumPy requires.
pub fn encode_npy(tensor: &Tensor, dtype: NpyDtype) -> Vec<u8> {
    let descr = match dtype {
        NpyDtype::F32 => "<f4",
        NpyDtype::F64 => "<f8",
    };
    let shape = match tensor.shape() {
        [] => "()".to_string(),
        [n] => format!("({n},)"),
        dims => format!(
            "({})",
            dims.iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let mut header = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
    // The data must start on a 64-byte boundary; the header ends with '\n'.
    let unpadded = MAGIC.len() + 4 + header.len() + 1;
    header.push_str(&" ".repeat((64 - unpadded % 64) % 64));
    header.push('\n');
    let mut out = Vec::with_capacity(MAGIC.len() + 4 + header.len() + tensor.len() * 8);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[1, 0]);
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    for &x in tensor.data() {
        match dtype {
            NpyDtype::F32 => out.extend_from_slice(&(x as f32).to_le_bytes()),
            NpyDtype::F64 => out.extend_from_slice(&x.to_le_bytes()),
        }
    }
    out
}

/// The text after `'key':` in a header dict.
fn header_value<'a>(header: &'a str, key: &str) -> Option<&'a str> {
    let quoted_key = [format!("'{key}'"), format!("\"{key}\"")];
    let start = quoted_key
        .iter()
        .find_map(|k| header.find(k.as_str()).map(|i| i + k.len()))?;
    let rest = header[start..].trim_start();
    Some(rest.strip_prefix(':')?.trim_start())
}

fn quoted(value: &str) -> Option<&str> {
    let quote = value.chars().next().filter(|c| *c == '\'' || *c == '"')?;
    let inner = &value[1..];
    inner.find(quote).map(|end| &inner[..end])
}

fn parse_shape(value: &str) -> Option<Vec<usize>> {
    let inner = value.strip_prefix('(')?;
    let inner = &inner[..inner.find(')')?];
    inner
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.trim_end_matches('L').parse().ok())
        .collect()
}

struct ElementType {
    size: usize,
    big_endian: bool,
    kind: char,
}

impl ElementType {
    fn parse(descr: &str) -> Option<Self> {
        let mut chars = descr.chars();
        let order = chars.next()?;
        let kind = chars.next()?;
        let size: usize = chars.as_str().parse().ok()?;
        let big_endian = match order {
            '<' | '|' | '=' => false,
            '>' => true,
            _ => return None,
        };
        let valid = match kind {
            'f' => size == 4 || size == 8,
            'i' | 'u' => matches!(size, 1 | 2 | 4 | 8),
            'b' => size == 1,
            _ => false,
        };
        valid.then_some(Self {
            size,
            big_endian,
            kind,
        })
    }

    fn decode(&self, chunk: &[u8]) -> f64 {
        let mut buf = [0u8; 8];
        if self.big_endian {
            for (i, b) in chunk.iter().rev().enumerate() {
                buf[i] = *b;
            }
        } else {
            buf[..self.size].copy_from_slice(chunk);
        }
        match (self.kind, self.size) {
            ('f', 4) => f32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]) as f64,
            ('f', _) => f64::from_le_bytes(buf),
            ('i', 1) => buf[0] as i8 as f64,
            ('i', 2) => i16::from_le_bytes([buf[0], buf[1]]) as f64,
            ('i', 4) => i32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]) as f64,
            ('i', _) => i64::from_le_bytes(buf) as f64,
            (_, _) => u64::from_le_bytes(buf) as f64,
        }
    }
}

/// Reorders column-major data into row-major order.
fn from_fortran_order(tensor: &Tensor) -> Tensor {
    let shape = tensor.shape().to_vec();
    let reversed: Vec<usize> = shape.iter().rev().copied().collect();
    let col_strides = crate::tensor::strides(&reversed);
    let row_strides = crate::tensor::strides(&shape);
    let rank = shape.len();
    let mut out = vec![0.0; tensor.len()];
    for (flat, slot) in out.iter_mut().enumerate() {
        let mut src = 0;
        for axis in 0..rank {
            let coord = (flat / row_strides[axis]) % shape[axis];
            src += coord * col_strides[rank - 1 - axis];
        }
        *slot = tensor.data()[src];
    }
    Tensor::new(shape, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A shape whose product overflows is refused, not wrapped to a small
    /// count (found by the `npy` fuzz target).
    #[test]
    fn a_shape_too_large_for_memory_is_refused() {
        let header = "{'descr': '<f4', 'fortran_order': False, 'shape': (35555555555, 35555555555, 35555555555), }";
        let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
        bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
        bytes.extend_from_slice(header.as_bytes());
        bytes.extend_from_slice(&[0; 16]);
        let error = parse_npy(&bytes, Path::new("x.npy")).unwrap_err();
        assert!(
            error.to_string().contains("more elements than memory"),
            "{error}"
        );
    }

    #[test]
    fn npz_archives_hold_named_arrays_numpy_reads() {
        let dir = std::env::temp_dir().join(format!("heman-npz-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("outputs.npz");
        let a = Tensor::new(vec![1, 3], vec![1.0, -2.5, 3.0]);
        let b = Tensor::new(vec![2], vec![0.25, 8.0]);
        write_npz(&path, &[("logits", &a), ("aux", &b)], NpyDtype::F64).unwrap();
        let samples = crate::io::dataset::load_arrays(&path).unwrap();
        let read: Vec<(&str, &Tensor)> = samples
            .iter()
            .map(|s| (s.name.as_str(), &s.tensor))
            .collect();
        assert_eq!(read, [("aux", &b), ("logits", &a)]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn round_trip_f64_and_f32() {
        let t = Tensor::new(vec![2, 3], vec![1.5, -2.0, 3.25, 0.0, 1e-3, 7.0]);
        for dtype in [NpyDtype::F64, NpyDtype::F32] {
            let bytes = encode_npy(&t, dtype);
            assert_eq!(
                (bytes.len() - t.len() * if dtype == NpyDtype::F64 { 8 } else { 4 }) % 64,
                0
            );
            let back = parse_npy(&bytes, Path::new("x.npy")).unwrap();
            assert_eq!(back.shape(), t.shape());
            for (a, b) in back.data().iter().zip(t.data()) {
                assert!((a - b).abs() < 1e-6);
            }
        }
    }

    #[test]
    fn truncated_and_foreign_bytes_are_refused() {
        let t = Tensor::new(vec![4], vec![1.0, 2.0, 3.0, 4.0]);
        let bytes = encode_npy(&t, NpyDtype::F32);
        let err = parse_npy(&bytes[..bytes.len() - 3], Path::new("cut.npy")).unwrap_err();
        assert!(err.to_string().contains("cut.npy: truncated data"), "{err}");
        let err = parse_npy(b"PK\x03\x04 not numpy", Path::new("a.zip")).unwrap_err();
        assert!(err.to_string().contains("not a .npy file"), "{err}");
    }

    #[test]
    fn fortran_order_is_transposed() {
        let header = "{'descr': '<f8', 'fortran_order': True, 'shape': (2, 3), }";
        let mut bytes = MAGIC.to_vec();
        bytes.extend_from_slice(&[1, 0]);
        bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
        bytes.extend_from_slice(header.as_bytes());
        // Column-major storage of [[1,2,3],[4,5,6]].
        for x in [1.0f64, 4.0, 2.0, 5.0, 3.0, 6.0] {
            bytes.extend_from_slice(&x.to_le_bytes());
        }
        let t = parse_npy(&bytes, Path::new("f.npy")).unwrap();
        assert_eq!(t.data(), &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    }
}
