//! Packs a [`Potential`] into the `potential_params` array of shaders/common/potential.wgsl.
//! Vectors are zero-padded to 8 entries (the shader's two-vec4 `Point`); derived quantities
//! (log weights, inverse variances) are computed here in f64.

use crate::gpu::abi::{self, POINT_LANES};
use crate::model::{Potential, Temperature};
use crate::scenario::walk::{Issues, Section};
use crate::shaders;

const LANES: usize = POINT_LANES as usize;
// The mixture's per-component order below: log normaliser, mean, inverse variances.
const _: () = assert!(
    abi::MIXTURE_COMPONENT_FLOATS as usize == 1 + 2 * LANES
        && abi::MIXTURE_MEAN == 1
        && abi::MIXTURE_INV_VAR as usize == 1 + LANES
);

fn padded(v: &[f64]) -> [f32; LANES] {
    let mut out = [0f32; LANES];
    for (o, x) in out.iter_mut().zip(v) {
        *o = *x as f32;
    }
    out
}

/// (POTENTIAL override value, parameter array).
pub fn gpu_potential_params(potential: &Potential) -> (u32, Vec<f32>) {
    match potential {
        Potential::Quadratic { matrix, center } => {
            let mut p = vec![0f32; abi::QUADRATIC_CENTER as usize];
            for (i, row) in matrix.iter().enumerate() {
                p[i * LANES..(i + 1) * LANES].copy_from_slice(&padded(row));
            }
            p.extend(padded(center));
            (abi::POTENTIAL_QUADRATIC, p)
        }
        Potential::DoubleWell => (abi::POTENTIAL_DOUBLE_WELL, vec![0.0]),
        Potential::MuellerBrown { scale } => (abi::POTENTIAL_MUELLER_BROWN, vec![*scale as f32]),
        Potential::Mixture(m) => {
            let mut p = vec![m.components() as f32];
            for k in 0..m.components() {
                let log_norm: f64 = m.stds[k].iter().map(|s| s.ln()).sum();
                p.push((m.weights[k].ln() - log_norm) as f32);
                p.extend(padded(&m.means[k]));
                let inv_var: Vec<f64> = m.stds[k].iter().map(|s| 1.0 / (s * s)).collect();
                p.extend(padded(&inv_var));
            }
            (abi::POTENTIAL_MIXTURE, p)
        }
        Potential::Expr(e) => {
            let mut p: Vec<f32> = e.params().iter().map(|&v| v as f32).collect();
            // A storage binding cannot be empty.
            if p.is_empty() {
                p.push(0.0);
            }
            (abi::POTENTIAL_EXPR, p)
        }
        Potential::Wgsl(w) => {
            let mut p: Vec<f32> = w.params().iter().map(|&v| v as f32).collect();
            if p.is_empty() {
                p.push(0.0);
            }
            (abi::POTENTIAL_EXPR, p)
        }
    }
}

/// A shader that includes common/potential.wgsl, composed for one potential and temperature:
/// the source (the built-in one unless an expression fills the user region), the POTENTIAL
/// override and the `potential_params` array (the potential's, then a temperature
/// expression's params).
pub struct PotentialShader {
    pub source: String,
    pub kind: u32,
    pub params: Vec<f32>,
    /// Whether `user_temperature` was generated (the TEMPERATURE_EXPR override).
    pub temperature_expr: bool,
}

/// Composes `base` for `potential` and, where the shader has noise, `temperature`.
/// Err: the generated code does not validate (naga's report).
pub fn potential_shader(
    base: &str,
    potential: &Potential,
    temperature: Option<&Temperature>,
) -> Result<PotentialShader, String> {
    potential_shader_with(base, potential, temperature, false)
}

/// Whether a WGSL-file potential defines `fn user_value(x: Point, t: f32) -> f32` (U itself,
/// which MALA needs beside the gradient).
pub fn wgsl_defines_value(potential: &Potential) -> bool {
    matches!(potential, Potential::Wgsl(w) if w.code.contains("fn user_value("))
}

/// [`potential_shader`], with `value`: U's value generated too (`user_value`, for MALA's
/// acceptance ratio) for an expression; a WGSL file that defines `user_value` replaces the
/// stub (one that does not leaves it poisoning: the scenario refuses MALA there).
pub fn potential_shader_with(
    base: &str,
    potential: &Potential,
    temperature: Option<&Temperature>,
    value: bool,
) -> Result<PotentialShader, String> {
    let (kind, mut params) = gpu_potential_params(potential);
    let mut functions = Vec::new();
    match potential {
        Potential::Expr(e) => {
            functions.push(("user_gradient", e.wgsl()));
            if value {
                functions.push(("user_value", e.wgsl_value()));
            }
        }
        Potential::Wgsl(w) => {
            functions.push(("user_gradient", w.code_with_params("potential_params", 0)));
            if value && wgsl_defines_value(potential) {
                // The file's own definition (inside the code above) takes the stub's place.
                functions.push(("user_value", String::new()));
            }
            // A file that defines `user_laplacian` (its own, for no observer: the energy
            // observer leaves WGSL potentials out) replaces that stub too, so the names
            // do not clash.
            if w.code.contains("fn user_laplacian(") {
                functions.push(("user_laplacian", String::new()));
            }
        }
        _ => {}
    }
    let temperature_expr = match temperature {
        Some(Temperature::Expr(f)) => {
            let offset = params.len();
            params.extend(f.params().iter().map(|&v| v as f32));
            functions.push((
                "user_temperature",
                f.wgsl("user_temperature", &|k| {
                    format!("potential_params[{}u]", offset + k)
                }),
            ));
            true
        }
        _ => false,
    };
    let source = if functions.is_empty() {
        base.to_string()
    } else {
        let source = shaders::with_user_functions(base, &functions)?;
        shaders::validate(&source)?;
        source
    };
    Ok(PotentialShader {
        source,
        kind,
        params,
        temperature_expr,
    })
}

/// Records an issue at `sec.potential` when `base` composed for the potential (and
/// temperature) does not validate: the run directory is never made for a model whose
/// shader cannot compile. Returns whether it validates.
pub(crate) fn check_potential_shader(
    issues: &mut Issues,
    sec: Section<'_>,
    base: &str,
    potential: &Potential,
    temperature: Option<&Temperature>,
) -> bool {
    check_potential_shader_with(issues, sec, base, potential, temperature, false)
}

/// [`check_potential_shader`] for [`potential_shader_with`] (`value`: MALA's U as well).
pub(crate) fn check_potential_shader_with(
    issues: &mut Issues,
    sec: Section<'_>,
    base: &str,
    potential: &Potential,
    temperature: Option<&Temperature>,
    value: bool,
) -> bool {
    // An expression's energy observer (its U, gradient and Laplacian) must compile too.
    let energy = match potential {
        Potential::Expr(_) => crate::observe::energy::energy_source(potential).map(|_| ()),
        _ => Ok(()),
    };
    let Err(why) = potential_shader_with(base, potential, temperature, value).and(energy) else {
        return true;
    };
    let (key, what) = match (potential, temperature) {
        (Potential::Wgsl(_), _) => (
            "potential.wgsl",
            "a WGSL file defining fn user_gradient(x: Point, t: f32) -> Point that compiles \
             with the dynamics' shader",
        ),
        (_, Some(Temperature::Expr(_))) if !matches!(potential, Potential::Expr(_)) => {
            ("temperature", "an expression whose generated WGSL compiles")
        }
        _ => ("potential", "an expression whose generated WGSL compiles"),
    };
    issues.add(&sec.key(key), None, format!("{what}; naga says: {why}"));
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::expr::{ExprPotential, PotentialSource, TimeExpr, TimeSource};

    fn expr(text: &str, k: f64) -> Potential {
        let source = PotentialSource {
            expr: text.into(),
            params: [("k".to_string(), k)].into(),
            dim: 2,
        };
        Potential::Expr(ExprPotential::new(source).expect("compiles"))
    }

    /// Param values go to the buffer, never into the source: the pipeline cache (keyed by
    /// the full source) reuses the kernel across a `--set ...params.k=` sweep, and a
    /// different expression gets its own.
    #[test]
    fn params_change_the_buffer_not_the_source() {
        let t = Temperature::Constant(1.0);
        let one = potential_shader(shaders::LANGEVIN, &expr("0.5*k*x^2 + y^2", 1.0), Some(&t))
            .expect("validates");
        let two = potential_shader(shaders::LANGEVIN, &expr("0.5*k*x^2 + y^2", 2.0), Some(&t))
            .expect("validates");
        assert_eq!(one.source, two.source);
        assert_eq!(
            (one.params.clone(), two.params.clone()),
            (vec![1.0], vec![2.0])
        );
        assert_eq!(one.kind, abi::POTENTIAL_EXPR);
        let other = potential_shader(shaders::LANGEVIN, &expr("0.5*k*x^4 + y^2", 1.0), Some(&t))
            .expect("validates");
        assert_ne!(one.source, other.source);
        // Built-in potentials keep the built-in source (and its cached pipeline).
        let builtin = potential_shader(shaders::LANGEVIN, &Potential::DoubleWell, Some(&t))
            .expect("validates");
        assert_eq!(builtin.source, shaders::LANGEVIN);
        assert!(!builtin.temperature_expr);
        // A temperature schedule's params follow the potential's.
        let schedule = Temperature::Expr(
            TimeExpr::new(TimeSource {
                expr: "a*exp(-t)".into(),
                params: [("a".to_string(), 3.0)].into(),
            })
            .expect("compiles"),
        );
        let annealed = potential_shader(
            shaders::LANGEVIN,
            &expr("0.5*k*x^2 + y^2", 2.0),
            Some(&schedule),
        )
        .expect("validates");
        assert_eq!(annealed.params, vec![2.0, 3.0]);
        assert!(annealed.temperature_expr);
        assert!(annealed.source.contains("potential_params[1u]"));
    }
}
