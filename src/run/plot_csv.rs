//! `fokker plot CSV`: a line chart of columns of a CSV file (e.g. a convergence study's
//! table), drawn like the run plots (bundled font, same bytes everywhere).

use crate::error::{Error, Result};
use crate::output::{self, plot};
use std::path::Path;

/// What to draw: `y` columns against the `x` column, one line per y column and, with
/// `group`, per distinct value of that column.
#[derive(Debug, Clone)]
pub struct PlotSpec {
    pub x: String,
    pub y: Vec<String>,
    pub group: Option<String>,
    pub log_x: bool,
    pub log_y: bool,
    pub title: String,
    pub y_label: String,
}

fn bad(path: &Path, reason: String) -> Error {
    Error::Data {
        path: path.to_path_buf(),
        reason,
    }
}

pub fn plot_csv(csv: &Path, spec: &PlotSpec, out: &Path) -> Result<()> {
    let text = std::fs::read_to_string(csv).map_err(|e| Error::io(csv, e))?;
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let header: Vec<&str> = lines
        .next()
        .ok_or_else(|| bad(csv, "empty file; a header line is needed".into()))?
        .split(',')
        .map(str::trim)
        .collect();
    let column = |name: &str| {
        header.iter().position(|h| *h == name).ok_or_else(|| {
            bad(
                csv,
                format!("no column {name:?}; columns: {}", header.join(", ")),
            )
        })
    };
    let xi = column(&spec.x)?;
    let yi: Vec<usize> = spec.y.iter().map(|y| column(y)).collect::<Result<_>>()?;
    let gi = spec.group.as_deref().map(column).transpose()?;
    let mut series: Vec<plot::Series> = Vec::new();
    for (n, line) in lines.enumerate() {
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        let number = |i: usize| -> Result<f64> {
            fields.get(i).and_then(|v| v.parse().ok()).ok_or_else(|| {
                bad(
                    csv,
                    format!("line {}: column {} is not a number", n + 2, header[i]),
                )
            })
        };
        let x = number(xi)?;
        let group = gi.map(|g| fields.get(g).copied().unwrap_or(""));
        for (k, &i) in yi.iter().enumerate() {
            let name = match group {
                Some(g) => format!("{} ({} = {g})", spec.y[k], header[gi.unwrap_or(0)]),
                None => spec.y[k].clone(),
            };
            let y = number(i)?;
            match series.iter_mut().find(|s| s.name == name) {
                Some(s) => s.points.push((x, y)),
                None => series.push(plot::Series {
                    name,
                    points: vec![(x, y)],
                    dashed: spec.y[k].contains("floor"),
                }),
            }
        }
    }
    for s in &mut series {
        s.points.sort_by(|a, b| a.0.total_cmp(&b.0));
    }
    let image = plot::line_chart_axes(
        &spec.title,
        &spec.x,
        &spec.y_label,
        &series,
        spec.log_x,
        spec.log_y,
    )?;
    output::write_atomic(out, &output::png_bytes(&image)?)
}
