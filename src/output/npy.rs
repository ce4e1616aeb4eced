//! `.npy` encoding (NumPy format 1.0+): the header comes from npyz, the data is written as
//! explicit little-endian words, so the bytes are the same on every host and large particle
//! arrays are copied in one pass instead of element by element through a serializer.

use crate::error::{Error, Result};
use npyz::{DType, TypeStr, WriteOptions, WriterBuilder};

/// `.npy` bytes of a C-order u64 array (`<u8`), e.g. histogram counts of shape `bins`.
pub fn npy_u64(shape: &[usize], data: &[u64]) -> Result<Vec<u8>> {
    encode(shape, data.len(), "<u8", 8, |buf| {
        for v in data {
            buf.extend_from_slice(&v.to_le_bytes());
        }
    })
}

/// `.npy` bytes of a C-order f32 array (`<f4`), e.g. particle positions of shape (N, d).
pub fn npy_f32(shape: &[usize], data: &[f32]) -> Result<Vec<u8>> {
    encode(shape, data.len(), "<f4", 4, |buf| {
        for v in data {
            buf.extend_from_slice(&v.to_le_bytes());
        }
    })
}

/// `.npy` bytes of a C-order u32 array (`<u4`), e.g. first-passage steps of shape (N,).
pub fn npy_u32(shape: &[usize], data: &[u32]) -> Result<Vec<u8>> {
    encode(shape, data.len(), "<u4", 4, |buf| {
        for v in data {
            buf.extend_from_slice(&v.to_le_bytes());
        }
    })
}

/// `.npy` bytes of a C-order i32 array (`<i4`), e.g. winding counts of shape (N, axes).
pub fn npy_i32(shape: &[usize], data: &[i32]) -> Result<Vec<u8>> {
    encode(shape, data.len(), "<i4", 4, |buf| {
        for v in data {
            buf.extend_from_slice(&v.to_le_bytes());
        }
    })
}

/// `.npy` bytes of a C-order f64 array (`<f8`), e.g. reference bin probabilities.
pub fn npy_f64(shape: &[usize], data: &[f64]) -> Result<Vec<u8>> {
    encode(shape, data.len(), "<f8", 8, |buf| {
        for v in data {
            buf.extend_from_slice(&v.to_le_bytes());
        }
    })
}

fn encode(
    shape: &[usize],
    len: usize,
    descr: &str,
    item_bytes: usize,
    write_data: impl FnOnce(&mut Vec<u8>),
) -> Result<Vec<u8>> {
    let expected = shape
        .iter()
        .try_fold(1usize, |acc, &n| acc.checked_mul(n))
        .ok_or_else(|| Error::Output(format!("npy shape {shape:?} is too large")))?;
    if expected != len {
        return Err(Error::Output(format!(
            "npy shape {shape:?} holds {expected} values but {len} were given"
        )));
    }
    let type_str: TypeStr = descr
        .parse()
        .map_err(|e| Error::Output(format!("npy type {descr}: {e}")))?;
    let shape: Vec<u64> = shape.iter().map(|&n| n as u64).collect();
    let mut buf = Vec::with_capacity(128 + len.saturating_mul(item_bytes));
    WriteOptions::<u64>::new()
        .dtype(DType::Plain(type_str))
        .shape(&shape)
        .writer(&mut buf)
        .write_header_only()
        .map_err(|e| Error::Output(format!("cannot write an npy header: {e}")))?;
    write_data(&mut buf);
    Ok(buf)
}

/// Reads a u64 array written by [`npy_u64`]: (shape, values in C order).
pub fn read_npy_u64(path: &std::path::Path) -> Result<(Vec<usize>, Vec<u64>)> {
    let bytes = std::fs::read(path).map_err(|e| crate::error::Error::io(path, e))?;
    let bad = |e: std::io::Error| crate::error::Error::Data {
        path: path.to_path_buf(),
        reason: format!("not a u64 .npy array: {e}"),
    };
    let npy = npyz::NpyFile::new(&bytes[..]).map_err(bad)?;
    let shape = npy.shape().iter().map(|&d| d as usize).collect();
    Ok((shape, npy.into_vec::<u64>().map_err(bad)?))
}

/// Reads a u32 array written by [`npy_u32`]: (shape, values in C order).
pub fn read_npy_u32(path: &std::path::Path) -> Result<(Vec<usize>, Vec<u32>)> {
    let bytes = std::fs::read(path).map_err(|e| crate::error::Error::io(path, e))?;
    let bad = |e: std::io::Error| crate::error::Error::Data {
        path: path.to_path_buf(),
        reason: format!("not a u32 .npy array: {e}"),
    };
    let npy = npyz::NpyFile::new(&bytes[..]).map_err(bad)?;
    let shape = npy.shape().iter().map(|&d| d as usize).collect();
    Ok((shape, npy.into_vec::<u32>().map_err(bad)?))
}

/// Reads an i32 array written by [`npy_i32`]: (shape, values in C order).
pub fn read_npy_i32(path: &std::path::Path) -> Result<(Vec<usize>, Vec<i32>)> {
    let bytes = std::fs::read(path).map_err(|e| crate::error::Error::io(path, e))?;
    let bad = |e: std::io::Error| crate::error::Error::Data {
        path: path.to_path_buf(),
        reason: format!("not an i32 .npy array: {e}"),
    };
    let npy = npyz::NpyFile::new(&bytes[..]).map_err(bad)?;
    let shape = npy.shape().iter().map(|&d| d as usize).collect();
    Ok((shape, npy.into_vec::<i32>().map_err(bad)?))
}

/// Reads an f32 array written by [`npy_f32`]: (shape, values in C order).
pub fn read_npy_f32(path: &std::path::Path) -> Result<(Vec<usize>, Vec<f32>)> {
    let bytes = std::fs::read(path).map_err(|e| crate::error::Error::io(path, e))?;
    let bad = |e: std::io::Error| crate::error::Error::Data {
        path: path.to_path_buf(),
        reason: format!("not an f32 .npy array: {e}"),
    };
    let npy = npyz::NpyFile::new(&bytes[..]).map_err(bad)?;
    let shape = npy.shape().iter().map(|&d| d as usize).collect();
    Ok((shape, npy.into_vec::<f32>().map_err(bad)?))
}

/// Reads an f64 array written by [`npy_f64`]: (shape, values in C order).
pub fn read_npy_f64(path: &std::path::Path) -> Result<(Vec<usize>, Vec<f64>)> {
    let bytes = std::fs::read(path).map_err(|e| crate::error::Error::io(path, e))?;
    let bad = |e: std::io::Error| crate::error::Error::Data {
        path: path.to_path_buf(),
        reason: format!("not an f64 .npy array: {e}"),
    };
    let npy = npyz::NpyFile::new(&bytes[..]).map_err(bad)?;
    let shape = npy.shape().iter().map(|&d| d as usize).collect();
    Ok((shape, npy.into_vec::<f64>().map_err(bad)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use npyz::NpyFile;

    #[test]
    fn u64_round_trips() {
        let data: Vec<u64> = (0..12).map(|i| i * 1_000_000_007 + (1 << 40)).collect();
        let bytes = npy_u64(&[3, 4], &data).unwrap();
        let file = NpyFile::new(&bytes[..]).unwrap();
        assert_eq!(file.shape(), &[3, 4]);
        assert_eq!(file.dtype().descr(), "'<u8'");
        assert_eq!(file.into_vec::<u64>().unwrap(), data);
        let header = String::from_utf8_lossy(&bytes[..128]);
        assert!(header.contains("'descr': '<u8'"), "{header}");
        assert!(header.contains("'fortran_order': False"), "{header}");
        // npyz writes tuples with a trailing comma, "(3, 4, )": valid Python, read by NumPy.
        assert!(header.contains("'shape': (3, 4,"), "{header}");
        // The data starts on a 64-byte boundary (NumPy's alignment rule).
        assert_eq!((bytes.len() - 12 * 8) % 64, 0);
    }

    #[test]
    fn f32_round_trips() {
        let data = [0.5f32, -1.25, f32::MAX, f32::MIN_POSITIVE, 0.0, -0.0];
        let bytes = npy_f32(&[3, 2], &data).unwrap();
        let file = NpyFile::new(&bytes[..]).unwrap();
        assert_eq!(file.shape(), &[3, 2]);
        assert_eq!(file.dtype().descr(), "'<f4'");
        let back = file.into_vec::<f32>().unwrap();
        assert_eq!(
            back.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
            data.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
        );
    }

    #[test]
    fn one_dimensional_and_empty_shapes() {
        let bytes = npy_u64(&[5], &[1, 2, 3, 4, 5]).unwrap();
        let header = String::from_utf8_lossy(&bytes[..64]);
        assert!(header.contains("'shape': (5,"), "{header}");
        assert_eq!(NpyFile::new(&bytes[..]).unwrap().shape(), &[5]);
        let bytes = npy_f32(&[0, 3], &[]).unwrap();
        let file = NpyFile::new(&bytes[..]).unwrap();
        assert_eq!(file.shape(), &[0, 3]);
        assert!(file.into_vec::<f32>().unwrap().is_empty());
    }

    #[test]
    fn shape_mismatch_is_an_error() {
        assert!(matches!(
            npy_u64(&[2, 2], &[1, 2, 3]),
            Err(Error::Output(_))
        ));
        assert!(matches!(
            npy_f32(&[usize::MAX, 2], &[]),
            Err(Error::Output(_))
        ));
    }
}
