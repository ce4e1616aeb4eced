//! Sample tables: the N x d data sets that scenarios point at (`init = { kind = "samples" }`,
//! and later SD-flow targets and empirical scores), read from `.npy` or `.csv`.
//!
//! These files come from users and other programs, so the readers treat every byte as
//! untrusted: any input gives either a table or an [`Error::Data`] whose reason names the
//! line/row and column at fault, and nothing here panics or allocates more than the file's own
//! size suggests (a header cannot make us reserve terabytes).

use crate::error::{Error, Result};
use sha2::{Digest, Sha256};
use std::path::Path;

/// A row-major table of `rows` x `dim` finite f32 values.
///
/// f32 because that is what the GPU holds; values are checked to be finite *after* the
/// conversion, so an f64 such as 1e300 is reported instead of silently becoming Inf.
#[derive(Debug, Clone, PartialEq)]
pub struct SampleTable {
    pub rows: usize,
    pub dim: usize,
    /// `values[r * dim + c]` is row r, column c.
    pub values: Vec<f32>,
}

impl SampleTable {
    /// The values in f64, row-major (for CPU twins).
    pub fn values_f64(&self) -> Vec<f64> {
        self.values.iter().map(|&v| f64::from(v)).collect()
    }

    /// Row `r` as a slice (`r < rows`).
    pub fn row(&self, r: usize) -> &[f32] {
        &self.values[r * self.dim..(r + 1) * self.dim]
    }

    /// Per-column (min, max), or None for an empty table.
    pub fn column_bounds(&self) -> Option<Vec<(f32, f32)>> {
        if self.rows == 0 || self.dim == 0 {
            return None;
        }
        let mut b = vec![(f32::INFINITY, f32::NEG_INFINITY); self.dim];
        for row in self.values.chunks_exact(self.dim) {
            for (bc, &v) in b.iter_mut().zip(row) {
                bc.0 = bc.0.min(v);
                bc.1 = bc.1.max(v);
            }
        }
        Some(b)
    }
}

/// Reads a `.npy` (float32/float64, little-endian, 1D = one column or 2D N x d) or `.csv`
/// (comma-separated numbers, optional header line) table. The extension decides the format.
pub fn read_table(path: &Path) -> Result<SampleTable> {
    read_table_and_hash(path).map(|(t, _)| t)
}

/// Reads the table and hashes its canonical content ([`canonical_sha256`]), so the hash in
/// the plan is the hash of the data actually used, whatever file format (or in-memory array)
/// carried it.
pub(crate) fn read_table_and_hash(path: &Path) -> Result<(SampleTable, String)> {
    let kind = Format::of(path)?;
    let bytes = std::fs::read(path).map_err(|e| data_err(path, format!("cannot read: {e}")))?;
    let table = parse_table(kind, &bytes).map_err(|reason| data_err(path, reason))?;
    let hash = canonical_sha256(&table);
    Ok((table, hash))
}

/// Hex sha256 of a table's canonical content: the float32 table the run uses, as its dtype,
/// shape and C-order data: `b"fokker-table\0<f4\0"`, rows and columns as little-endian u64,
/// then every value as little-endian f32, row by row. The same data from a .npy (float32 or
/// float64, C or Fortran order), a .csv or a NumPy array hashes the same (docs/architecture.md,
/// "Plan hash").
pub fn canonical_sha256(table: &SampleTable) -> String {
    let mut h = Sha256::new();
    h.update(b"fokker-table\0<f4\0");
    h.update((table.rows as u64).to_le_bytes());
    h.update((table.dim as u64).to_le_bytes());
    for v in &table.values {
        h.update(v.to_le_bytes());
    }
    hex(&h.finalize())
}

/// Checks and converts an in-memory array's values (row-major, `rows` x `dim`) the way the
/// .npy reader does: at least one row and column, every value finite in float32. The error
/// is the reason, naming the row and column at fault.
pub fn table_from_values<T: Copy + Into<f64>>(
    rows: usize,
    dim: usize,
    values: impl IntoIterator<Item = T>,
) -> std::result::Result<SampleTable, String> {
    if rows == 0 {
        return Err("empty: the array has no rows".into());
    }
    if dim == 0 {
        return Err("empty: the array has no columns".into());
    }
    let mut out = Vec::with_capacity(rows.saturating_mul(dim));
    for (i, v) in values.into_iter().enumerate() {
        let x: f64 = v.into();
        let (r, c) = (i / dim, i % dim);
        if !x.is_finite() {
            return Err(format!(
                "{x} at row {r}, column {c} (0-based); values must be finite"
            ));
        }
        let f = x as f32;
        if !f.is_finite() {
            return Err(format!(
                "value {x:e} at row {r}, column {c} (0-based) is outside the float32 range"
            ));
        }
        out.push(f);
    }
    if out.len() != rows * dim {
        return Err(format!("{} values for shape ({rows}, {dim})", out.len()));
    }
    Ok(SampleTable {
        rows,
        dim,
        values: out,
    })
}

/// In-memory arrays given in place of data files (the Python package's dict scenarios): a
/// samples table's `data` key holds [`ArrayInputs::token`] of an entry instead of a `path`.
/// The plan records such an input at `dir/<key>.npy`, where the run writes it (so the run
/// directory stays complete and resumable) and the hash covers its canonical content like a
/// file's.
#[derive(Debug, Clone, Default)]
pub struct ArrayInputs {
    /// Where the run keeps the arrays: `<run directory>/inputs`.
    pub dir: std::path::PathBuf,
    pub entries: Vec<ArrayInput>,
}

/// One array: how to show it in messages (e.g. `float64 array of shape (5000, 2)`) and its
/// table, or why it is not one.
#[derive(Debug, Clone)]
pub struct ArrayInput {
    pub description: String,
    pub table: std::result::Result<SampleTable, String>,
}

impl ArrayInputs {
    const TOKEN: &'static str = "\u{1}fokker-array:";

    /// The string that stands for entry `index` in the scenario table.
    pub fn token(index: usize) -> String {
        format!("{}{index}", Self::TOKEN)
    }

    /// The entry a string stands for, if it is a token of one.
    pub(crate) fn lookup(&self, s: &str) -> Option<&ArrayInput> {
        let index: usize = s.strip_prefix(Self::TOKEN)?.parse().ok()?;
        self.entries.get(index)
    }
}

/// The arrays a resolution used: where the plan records each, and its table.
type UsedArrays = Vec<(std::path::PathBuf, SampleTable)>;

std::thread_local! {
    /// The arrays of the scenario being resolved on this thread, and the ones it used (see
    /// `with_arrays`).
    static ARRAYS: std::cell::RefCell<Option<(ArrayInputs, UsedArrays)>> =
        const { std::cell::RefCell::new(None) };
}

/// Runs `f` (a resolution) with `arrays` available to `data` keys; returns its result and the
/// arrays it used, with the paths the plan records for them.
pub(crate) fn with_arrays<R>(arrays: ArrayInputs, f: impl FnOnce() -> R) -> (R, UsedArrays) {
    ARRAYS.with(|a| *a.borrow_mut() = Some((arrays, Vec::new())));
    let r = f();
    let used = ARRAYS
        .with(|a| a.borrow_mut().take())
        .map(|(_, used)| used)
        .unwrap_or_default();
    (r, used)
}

/// The table a `data` value stands for, with the path the plan records for it; None when it
/// is no array's token (a scenario file), `Err` with the array's description and why it is
/// not a table.
pub(crate) fn array_for(
    key: &str,
    token: &str,
) -> Option<std::result::Result<(std::path::PathBuf, SampleTable), (String, String)>> {
    ARRAYS.with(|a| {
        let mut a = a.borrow_mut();
        let (arrays, used) = a.as_mut()?;
        let entry = arrays.lookup(token)?;
        Some(match &entry.table {
            Ok(t) => {
                let path = arrays.dir.join(format!("{key}.npy"));
                used.push((path.clone(), t.clone()));
                Ok((path, t.clone()))
            }
            Err(reason) => Err((entry.description.clone(), reason.clone())),
        })
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    Npy,
    Csv,
}

impl Format {
    /// The format named by the file's extension (case-insensitive).
    pub(crate) fn of(path: &Path) -> Result<Format> {
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        match ext.as_deref() {
            Some("npy") => Ok(Format::Npy),
            Some("csv") => Ok(Format::Csv),
            _ => Err(data_err(
                path,
                "not a .npy or .csv file (the extension decides the format)".into(),
            )),
        }
    }
}

/// Parses bytes in the given format; the error is the reason, without the path.
pub(crate) fn parse_table(
    format: Format,
    bytes: &[u8],
) -> std::result::Result<SampleTable, String> {
    match format {
        Format::Npy => parse_npy(bytes),
        Format::Csv => parse_csv(bytes),
    }
}

fn data_err(path: &Path, reason: String) -> Error {
    Error::Data {
        path: path.to_path_buf(),
        reason,
    }
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(2 * bytes.len()), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

// ----------------------------------------------------------------------------------------
// .npy

/// Deepest bracket nesting accepted in a .npy header. numpy writes depth 2 (a dict holding
/// the shape tuple); the limit keeps a hostile header from recursing the Python-literal
/// parser into a stack overflow, which would abort rather than return an error.
const MAX_HEADER_NESTING: usize = 8;

fn parse_npy(bytes: &[u8]) -> std::result::Result<SampleTable, String> {
    let (header_text, data_start) = split_npy_header(bytes)?;
    precheck_header_text(header_text)?;

    let header =
        npyz::NpyHeader::from_reader(bytes).map_err(|e| format!("malformed .npy header: {e}"))?;
    let dtype = header.dtype();
    let type_str = match &dtype {
        npyz::DType::Plain(ts) => ts.to_string(),
        other => {
            return Err(format!(
                "unsupported dtype {} (expected float32 '<f4' or float64 '<f8')",
                other.descr()
            ));
        }
    };
    let width = match type_str.as_str() {
        "<f4" => 4usize,
        "<f8" => 8usize,
        _ => {
            return Err(format!(
                "unsupported dtype '{type_str}' (expected little-endian float32 '<f4' or float64 '<f8')"
            ));
        }
    };
    let (rows, dim) = match *header.shape() {
        [] => return Err("the array is a scalar (shape ()); expected 1D (N,) or 2D (N, d)".into()),
        [n] => (n, 1),
        [n, d] => (n, d),
        ref s => {
            return Err(format!(
                "the array has {} dimensions (shape {s:?}); expected 1D (N,) or 2D (N, d)",
                s.len()
            ));
        }
    };
    if rows == 0 {
        return Err("empty: the array has no rows".into());
    }
    if dim == 0 {
        return Err("empty: the array has no columns".into());
    }
    let count = rows
        .checked_mul(dim)
        .and_then(|n| usize::try_from(n).ok())
        .ok_or_else(|| format!("shape ({rows}, {dim}) is too large"))?;
    let (rows, dim) = (rows as usize, dim as usize);
    let expected = count
        .checked_mul(width)
        .ok_or_else(|| format!("shape ({rows}, {dim}) is too large"))?;
    let actual = bytes.len() - data_start;
    if actual != expected {
        return Err(format!(
            "truncated or padded: the header says shape ({rows}, {dim}) x {width} bytes = \
             {expected} data bytes, the file has {actual}"
        ));
    }
    let data = &bytes[data_start..];
    let fortran = header.order() == npyz::Order::Fortran;
    // Stored element i sits at (row, col) = C: (i / dim, i % dim); Fortran: (i % rows, i / rows).
    let position = |i: usize| {
        if fortran {
            (i % rows, i / rows)
        } else {
            (i / dim, i % dim)
        }
    };
    let mut values = vec![0f32; count];
    for i in 0..count {
        let chunk = &data[i * width..(i + 1) * width];
        let (r, c) = position(i);
        let v = match width {
            4 => f32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]),
            _ => {
                let mut b = [0u8; 8];
                b.copy_from_slice(chunk);
                let x = f64::from_le_bytes(b);
                if x.is_finite() && !(x as f32).is_finite() {
                    return Err(format!(
                        "value {x:e} at row {r}, column {c} (0-based) is outside the float32 range"
                    ));
                }
                x as f32
            }
        };
        if !v.is_finite() {
            return Err(format!(
                "{v} at row {r}, column {c} (0-based); values must be finite"
            ));
        }
        values[r * dim + c] = v;
    }
    Ok(SampleTable { rows, dim, values })
}

/// Checks the fixed preamble (magic, version, header length) and returns the header text and
/// where the data starts. npyz reads the same preamble; doing it here first lets us refuse a
/// header length beyond the end of the file before anything is allocated for it.
fn split_npy_header(bytes: &[u8]) -> std::result::Result<(&[u8], usize), String> {
    const MAGIC: &[u8] = b"\x93NUMPY";
    if bytes.is_empty() {
        return Err("empty file".into());
    }
    if bytes.len() < 10 || &bytes[..6] != MAGIC {
        return Err("not a .npy file (the \\x93NUMPY magic is missing)".into());
    }
    let (len, prefix) = match (bytes[6], bytes[7]) {
        (1, 0) => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10usize),
        (2, 0) | (3, 0) if bytes.len() >= 12 => (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        ),
        (2, 0) | (3, 0) => return Err("truncated .npy header".into()),
        (a, b) => return Err(format!("unsupported .npy format version {a}.{b}")),
    };
    let end = prefix
        .checked_add(len)
        .filter(|&e| e <= bytes.len())
        .ok_or("truncated .npy header (its length runs past the end of the file)")?;
    Ok((&bytes[prefix..end], end))
}

/// Rejects header texts that could make the header parser misbehave: nesting deeper than
/// numpy ever writes, and a `shape` whose dimensions multiply past u64 (npyz multiplies them
/// unchecked, which panics in debug builds).
fn precheck_header_text(text: &[u8]) -> std::result::Result<(), String> {
    let text = std::str::from_utf8(text).map_err(|_| "malformed .npy header: not UTF-8")?;
    // numpy never writes escapes in a header; refusing them keeps `'sh\x61pe'` from hiding
    // the shape key from the scan below.
    if text.contains('\\') {
        return Err("malformed .npy header: unexpected escape sequence".into());
    }
    let mut depth = 0usize;
    for ch in text.chars() {
        match ch {
            '(' | '[' | '{' => {
                depth += 1;
                if depth > MAX_HEADER_NESTING {
                    return Err("malformed .npy header: nested too deeply".into());
                }
            }
            ')' | ']' | '}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    // Every mention of shape must be a tuple/list of decimal integers with a product that fits.
    let mut rest = text;
    while let Some(at) = rest.find("shape") {
        rest = &rest[at + 5..];
        let after = rest.trim_start_matches(|c: char| c == '\'' || c == '"' || c.is_whitespace());
        let Some(after) = after.strip_prefix(':') else {
            continue;
        };
        let after = after.trim_start();
        let close = match after.chars().next() {
            Some('(') => ')',
            Some('[') => ']',
            _ => return Err("malformed .npy header: shape is not a tuple".into()),
        };
        let end = after
            .find(close)
            .ok_or("malformed .npy header: unterminated shape")?;
        let mut product: u64 = 1;
        for item in after[1..end].split(',') {
            let item = item.trim().trim_end_matches('L');
            if item.is_empty() {
                continue;
            }
            let n: u64 = item
                .parse()
                .map_err(|_| format!("malformed .npy header: shape entry {item:?}"))?;
            // Zeros are skipped: npyz also forms partial products (strides), which overflow
            // for (0, 2^40, 2^40) even though the total is 0.
            product = product
                .checked_mul(n.max(1))
                .ok_or("malformed .npy header: shape is too large")?;
        }
    }
    Ok(())
}

// ----------------------------------------------------------------------------------------
// .csv

/// Comma-separated numbers, one row per line. Blank lines and lines starting with `#`
/// (numpy.savetxt writes its header that way) are skipped; the first remaining line may be a
/// header of column names, recognised by not being all numbers. Line numbers in messages are
/// 1-based file lines, as an editor shows them.
fn parse_csv(bytes: &[u8]) -> std::result::Result<SampleTable, String> {
    if bytes.is_empty() {
        return Err("empty file".into());
    }
    let text = std::str::from_utf8(bytes).map_err(|e| {
        format!(
            "not UTF-8 text (invalid byte at offset {}); is this really a .csv file?",
            e.valid_up_to()
        )
    })?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut dim: Option<(usize, usize)> = None; // (columns, line where first seen)
    let mut values = Vec::new();
    let mut rows = 0usize;
    let mut header_allowed = true;
    for (i, line) in text.lines().enumerate() {
        let lineno = i + 1;
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        let parsed: Vec<Option<f64>> = fields.iter().map(|f| f.parse::<f64>().ok()).collect();
        if header_allowed && parsed.iter().any(Option::is_none) && !looks_numeric_row(&fields) {
            // A header: its width still fixes the expected column count.
            header_allowed = false;
            dim = Some((fields.len(), lineno));
            continue;
        }
        header_allowed = false;
        match dim {
            Some((d, first)) if d != fields.len() => {
                return Err(format!(
                    "ragged: line {lineno} has {} columns, expected {d} (as on line {first})",
                    fields.len()
                ));
            }
            None => dim = Some((fields.len(), lineno)),
            _ => {}
        }
        for (c, (f, v)) in fields.iter().zip(&parsed).enumerate() {
            let col = c + 1;
            let v = v.ok_or_else(|| {
                if f.is_empty() {
                    format!("line {lineno}, column {col} is empty")
                } else {
                    format!("line {lineno}, column {col}: {f:?} is not a number")
                }
            })?;
            if !v.is_finite() {
                return Err(format!(
                    "line {lineno}, column {col}: {f} (NaN/Inf); values must be finite"
                ));
            }
            let x = v as f32;
            if !x.is_finite() {
                return Err(format!(
                    "line {lineno}, column {col}: {f} is outside the float32 range"
                ));
            }
            values.push(x);
        }
        rows += 1;
    }
    match dim {
        Some((d, _)) if rows > 0 => Ok(SampleTable {
            rows,
            dim: d,
            values,
        }),
        _ => Err("empty: no data rows".into()),
    }
}

/// A first line with at least one number and the rest unparseable is treated as data (so the
/// error names the bad field) rather than as a header; a header has no numeric fields at all.
fn looks_numeric_row(fields: &[&str]) -> bool {
    fields.iter().any(|f| f.parse::<f64>().is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn npy_bytes(descr: &str, shape: &str, fortran: bool, data: &[u8]) -> Vec<u8> {
        let mut text = format!(
            "{{'descr': '{descr}', 'fortran_order': {}, 'shape': {shape}, }}",
            if fortran { "True" } else { "False" }
        );
        while (10 + text.len() + 1) % 64 != 0 {
            text.push(' ');
        }
        text.push('\n');
        let mut out = b"\x93NUMPY\x01\x00".to_vec();
        out.extend((text.len() as u16).to_le_bytes());
        out.extend(text.as_bytes());
        out.extend(data);
        out
    }

    fn f32s(v: &[f32]) -> Vec<u8> {
        v.iter().flat_map(|x| x.to_le_bytes()).collect()
    }

    fn f64s(v: &[f64]) -> Vec<u8> {
        v.iter().flat_map(|x| x.to_le_bytes()).collect()
    }

    fn write(dir: &tempfile::TempDir, name: &str, bytes: &[u8]) -> std::path::PathBuf {
        let p = dir.path().join(name);
        let mut f = std::fs::File::create(&p).expect("create");
        f.write_all(bytes).expect("write");
        p
    }

    fn reason(r: Result<SampleTable>) -> String {
        match r {
            Err(Error::Data { reason, .. }) => reason,
            other => panic!("expected a data error, got {other:?}"),
        }
    }

    #[test]
    fn npy_f32_2d() {
        let d = tempfile::tempdir().expect("tempdir");
        let p = write(
            &d,
            "a.npy",
            &npy_bytes("<f4", "(3, 2)", false, &f32s(&[1., 2., 3., 4., 5., 6.])),
        );
        let t = read_table(&p).expect("read");
        assert_eq!((t.rows, t.dim), (3, 2));
        assert_eq!(t.values, vec![1., 2., 3., 4., 5., 6.]);
        assert_eq!(t.row(1), &[3., 4.]);
    }

    #[test]
    fn npy_f64_2d_and_fortran_order() {
        let d = tempfile::tempdir().expect("tempdir");
        let p = write(
            &d,
            "a.npy",
            &npy_bytes("<f8", "(2, 3)", false, &f64s(&[1., 2., 3., 4., 5., 6.])),
        );
        let t = read_table(&p).expect("read");
        assert_eq!((t.rows, t.dim), (2, 3));
        assert_eq!(t.values, vec![1., 2., 3., 4., 5., 6.]);
        // The same matrix stored column-major.
        let p = write(
            &d,
            "f.npy",
            &npy_bytes("<f8", "(2, 3)", true, &f64s(&[1., 4., 2., 5., 3., 6.])),
        );
        assert_eq!(
            read_table(&p).expect("read").values,
            vec![1., 2., 3., 4., 5., 6.]
        );
    }

    #[test]
    fn npy_1d_is_one_column() {
        let d = tempfile::tempdir().expect("tempdir");
        let p = write(
            &d,
            "a.npy",
            &npy_bytes("<f4", "(4,)", false, &f32s(&[1., 2., 3., 4.])),
        );
        let t = read_table(&p).expect("read");
        assert_eq!((t.rows, t.dim), (4, 1));
    }

    #[test]
    fn npy_rejections() {
        let d = tempfile::tempdir().expect("tempdir");
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (
                npy_bytes("<i4", "(2,)", false, &[0; 8]),
                "unsupported dtype '<i4'",
            ),
            (
                npy_bytes(">f4", "(2,)", false, &[0; 8]),
                "unsupported dtype '>f4'",
            ),
            (npy_bytes("<f4", "(0, 2)", false, &[]), "empty"),
            (npy_bytes("<f4", "()", false, &[0; 4]), "scalar"),
            (
                npy_bytes("<f4", "(1, 1, 1)", false, &[0; 4]),
                "3 dimensions",
            ),
            (npy_bytes("<f4", "(3,)", false, &[0; 8]), "truncated"),
            (
                npy_bytes("<f4", "(4294967296, 4294967296)", false, &[0; 8]),
                "too large",
            ),
            (
                npy_bytes("<f4", "(0, 400000, 50000000000000)", false, &[]),
                "too large",
            ),
            (
                npy_bytes("<f4", "(2,)", false, &f32s(&[1.0, f32::NAN])),
                "row 1, column 0",
            ),
            (
                npy_bytes("<f8", "(1, 2)", false, &f64s(&[1.0, 1e300])),
                "outside the float32 range",
            ),
            (
                b"\x93NUMPY\x01\x00\xff\xff{".to_vec(),
                "truncated .npy header",
            ),
            (b"hello world, not numpy".to_vec(), "magic"),
            (
                b"\x93NUMPY\x01\x00\x3c\x00{'descr': '<f4', 'fortran_order': False, 'sh\\x61pe': (2,), }\n"
                    .to_vec(),
                "escape",
            ),
            (vec![], "empty file"),
        ];
        for (bytes, want) in cases {
            let p = write(&d, "x.npy", &bytes);
            let r = reason(read_table(&p));
            assert!(r.contains(want), "{r:?} should mention {want:?}");
        }
    }

    #[test]
    fn deeply_nested_header_is_an_error_not_a_crash() {
        let d = tempfile::tempdir().expect("tempdir");
        let text = "[".repeat(60000);
        let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
        bytes.extend((text.len() as u16).to_le_bytes());
        bytes.extend(text.as_bytes());
        let p = write(&d, "x.npy", &bytes);
        assert!(reason(read_table(&p)).contains("nested"));
    }

    #[test]
    fn csv_with_header_comments_and_blank_lines() {
        let d = tempfile::tempdir().expect("tempdir");
        let p = write(
            &d,
            "a.csv",
            b"\xef\xbb\xbfx, y\r\n\n1, 2\r\n# note\n3,4e-1\n\n",
        );
        let t = read_table(&p).expect("read");
        assert_eq!((t.rows, t.dim), (2, 2));
        assert_eq!(t.values, vec![1., 2., 3., 0.4]);
        let p = write(&d, "b.CSV", b"5\n6\n");
        assert_eq!(read_table(&p).expect("read").dim, 1);
    }

    #[test]
    fn csv_rejections() {
        let d = tempfile::tempdir().expect("tempdir");
        let cases: Vec<(&[u8], &str)> = vec![
            (b"1,2\n3,4\n5,6,7\n", "line 3 has 3 columns, expected 2"),
            (
                b"a,b\n1,2,3\n",
                "line 2 has 3 columns, expected 2 (as on line 1)",
            ),
            (b"1,2\n3,nan\n", "line 2, column 2: nan (NaN/Inf)"),
            (b"1,2\n3,inf\n", "NaN/Inf"),
            (b"1,2\n3,abc\n", "\"abc\" is not a number"),
            (b"1,2\n3,\n", "line 2, column 2 is empty"),
            (b"1,1e39\n", "float32 range"),
            (b"", "empty file"),
            (b"\n\n  \n", "empty: no data rows"),
            (b"x,y\n", "empty: no data rows"),
            (b"\xff\xfe\x00garbage", "not UTF-8"),
        ];
        for (bytes, want) in cases {
            let p = write(&d, "x.csv", bytes);
            let r = reason(read_table(&p));
            assert!(r.contains(want), "{r:?} should mention {want:?}");
        }
    }

    #[test]
    fn extension_and_missing_file() {
        let d = tempfile::tempdir().expect("tempdir");
        let p = write(&d, "a.txt", b"1,2\n");
        assert!(reason(read_table(&p)).contains("not a .npy or .csv"));
        assert!(reason(read_table(&d.path().join("missing.csv"))).contains("cannot read"));
    }

    #[test]
    fn canonical_hash_is_the_content_not_the_file() {
        // The same 3 x 2 table as a float32 .npy, a float64 Fortran-order .npy, a .csv with a
        // header and an in-memory array: one hash. Each value is a binary fraction, exact in
        // f32, so the conversions cannot differ.
        let rows = [[1.0f64, -2.5], [0.25, 4.0], [-8.0, 0.5]];
        let d = tempfile::tempdir().expect("tempdir");
        let flat32: Vec<f32> = rows.iter().flatten().map(|&v| v as f32).collect();
        let f32_npy = npy_bytes("<f4", "(3, 2)", false, &f32s(&flat32));
        let column_major: Vec<f64> = (0..2)
            .flat_map(|c| rows.iter().map(move |r| r[c]))
            .collect();
        let f64_fortran = npy_bytes("<f8", "(3, 2)", true, &f64s(&column_major));
        let csv = b"x,y\n1,-2.5\n0.25,4\n-8,0.5\n";
        let from_array = canonical_sha256(
            &table_from_values(3, 2, rows.iter().flatten().copied()).expect("table"),
        );
        for (name, bytes) in [
            ("a.npy", &f32_npy[..]),
            ("b.npy", &f64_fortran[..]),
            ("c.csv", &csv[..]),
        ] {
            let (table, hash) = read_table_and_hash(&write(&d, name, bytes)).expect("read");
            assert_eq!(table.values, flat32, "{name}");
            assert_eq!(hash, from_array, "{name}");
        }
        // Known-answer: the definition spelled out byte by byte.
        let mut spelled = b"fokker-table\0<f4\0".to_vec();
        spelled.extend(3u64.to_le_bytes());
        spelled.extend(2u64.to_le_bytes());
        flat32.iter().for_each(|v| spelled.extend(v.to_le_bytes()));
        assert_eq!(from_array, hex(&Sha256::digest(&spelled)));
        // Different shape, same values: another hash.
        let column = table_from_values(6, 1, flat32.iter().copied()).expect("table");
        assert_ne!(canonical_sha256(&column), from_array);
    }

    #[test]
    fn arrays_are_checked_like_files() {
        let err = |r: std::result::Result<SampleTable, String>| r.expect_err("must fail");
        assert!(err(table_from_values(0, 2, std::iter::empty::<f32>())).contains("no rows"));
        let nan = err(table_from_values(2, 2, [0.0, 1.0, f64::NAN, 2.0]));
        assert!(nan.contains("row 1, column 0"), "{nan}");
        assert!(err(table_from_values(1, 1, [1e300f64])).contains("float32 range"));
    }

    mod fuzz {
        use super::super::*;
        use proptest::prelude::*;

        fn header_soup() -> impl Strategy<Value = Vec<u8>> {
            // A valid preamble followed by header-like text and some data bytes.
            (
                proptest::string::string_regex("[{}()\\[\\]',: 0-9a-z<>|_]{0,120}").expect("regex"),
                proptest::collection::vec(any::<u8>(), 0..64),
            )
                .prop_map(|(text, data)| {
                    let mut b = b"\x93NUMPY\x01\x00".to_vec();
                    b.extend((text.len() as u16).to_le_bytes());
                    b.extend(text.as_bytes());
                    b.extend(data);
                    b
                })
        }

        fn plausible_header() -> impl Strategy<Value = Vec<u8>> {
            (
                prop::sample::select(vec![
                    "<f4",
                    "<f8",
                    ">f4",
                    "<i8",
                    "|O",
                    "<c8",
                    "[('a', '<f4')]",
                ]),
                prop::sample::select(vec!["True", "False", "1"]),
                proptest::string::string_regex("\\((-?[0-9]{1,21}, ?){0,3}-?[0-9]{0,21}\\)")
                    .expect("regex"),
                proptest::collection::vec(any::<u8>(), 0..128),
            )
                .prop_map(|(descr, fo, shape, data)| {
                    let d = if descr.starts_with('[') {
                        descr.to_string()
                    } else {
                        format!("'{descr}'")
                    };
                    let text =
                        format!("{{'descr': {d}, 'fortran_order': {fo}, 'shape': {shape}, }}\n");
                    let mut b = b"\x93NUMPY\x01\x00".to_vec();
                    b.extend((text.len() as u16).to_le_bytes());
                    b.extend(text.as_bytes());
                    b.extend(data);
                    b
                })
        }

        proptest! {
            #[test]
            fn byte_soup_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
                let _ = parse_table(Format::Npy, &bytes);
                let _ = parse_table(Format::Csv, &bytes);
            }

            #[test]
            fn npy_header_soup_never_panics(bytes in header_soup()) {
                let _ = parse_table(Format::Npy, &bytes);
            }

            #[test]
            fn plausible_npy_never_panics(bytes in plausible_header()) {
                let _ = parse_table(Format::Npy, &bytes);
            }

            #[test]
            fn csv_like_text_never_panics(text in "[0-9eE.,+\\-a-z# \n\r]{0,200}") {
                let _ = parse_table(Format::Csv, text.as_bytes());
            }

            #[test]
            fn files_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
                let d = tempfile::tempdir().expect("tempdir");
                for name in ["x.npy", "x.csv"] {
                    let p = d.path().join(name);
                    std::fs::write(&p, &bytes).expect("write");
                    let _ = read_table(&p);
                }
            }
        }
    }
}
