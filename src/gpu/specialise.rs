//! Shader modules specialised on the host: the overrides replaced by their values, the
//! branches those values decide cut out, and what no longer runs dropped, before the driver
//! sees the module.
//!
//! Our kernels choose their variant by overrides (`BOUNDARY`, `MALA`, `TAG_STRIDE`,
//! `REFLECT_AXES`, ...). Handed over as WGSL with pipeline constants, every variant's code
//! reached lavapipe whole: it inlines every called function and optimises the result before
//! it finds a branch dead, so the plain Langevin kernel compiled about twice as slowly with
//! the walls' and targets' code present but switched off (docs/architecture.md, "Start-up").
//! naga resolves the overrides (`process_overrides`, as wgpu itself does); [`prune`] then
//! replaces every `if` whose condition became a constant by the branch taken, and
//! `compact` drops the functions and globals nothing reaches any more.

use naga::{Block, Expression, Literal, Statement};

/// The module of `source` for entry point `entry` with the overrides `constants`
/// (name, value), pruned and validated; the error says which stage failed.
pub fn specialise(
    source: &str,
    entry: &str,
    constants: &[(&str, f64)],
) -> Result<naga::Module, String> {
    let module = naga::front::wgsl::parse_str(source).map_err(|e| e.emit_to_string(source))?;
    let mut validator = naga::valid::Validator::new(
        naga::valid::ValidationFlags::all(),
        naga::valid::Capabilities::all(),
    );
    let info = validator
        .validate(&module)
        .map_err(|e| format!("validation: {:?}", e.into_inner()))?;
    let values: naga::back::PipelineConstants = constants
        .iter()
        .map(|(name, value)| (name.to_string(), *value))
        .collect();
    let (resolved, _) = naga::back::pipeline_constants::process_overrides(
        &module,
        &info,
        Some((naga::ShaderStage::Compute, entry)),
        &values,
    )
    .map_err(|e| format!("overrides: {e}"))?;
    let mut module = resolved.into_owned();
    let functions = module.functions.iter_mut().map(|(_, f)| f);
    for f in functions.chain(module.entry_points.iter_mut().map(|ep| &mut ep.function)) {
        prune(&mut f.body, &f.expressions);
        // `compact` keeps every named expression (a `let`) alive, also one whose statement
        // was cut out with its branch: the result of a call no longer made would then keep
        // pointing at a function `compact` drops. The names only label the driver's input.
        f.named_expressions.clear();
    }
    naga::compact::compact(&mut module, naga::compact::KeepUnused::No);
    validator
        .validate(&module)
        .map_err(|e| format!("validation after pruning: {:?}", e.into_inner()))?;
    Ok(module)
}

/// The group-0 binding numbers `module` declares (after `specialise`: those its entry point
/// uses), ascending.
pub fn bindings(module: &naga::Module) -> Vec<u32> {
    let mut out: Vec<u32> = module
        .global_variables
        .iter()
        .filter_map(|(_, g)| g.binding.as_ref())
        .filter(|b| b.group == 0)
        .map(|b| b.binding)
        .collect();
    out.sort_unstable();
    out
}

/// Replaces every `if` of `block` (and of the blocks inside it) whose condition is a
/// boolean literal by the branch it takes.
pub fn prune(block: &mut Block, expressions: &naga::Arena<Expression>) {
    let old = std::mem::take(block);
    for (statement, span) in old.span_into_iter() {
        let statement = match statement {
            Statement::If {
                condition,
                mut accept,
                mut reject,
            } => match expressions[condition] {
                Expression::Literal(Literal::Bool(taken)) => {
                    let mut branch = if taken { accept } else { reject };
                    prune(&mut branch, expressions);
                    Statement::Block(branch)
                }
                _ => {
                    prune(&mut accept, expressions);
                    prune(&mut reject, expressions);
                    Statement::If {
                        condition,
                        accept,
                        reject,
                    }
                }
            },
            Statement::Block(mut inner) => {
                prune(&mut inner, expressions);
                Statement::Block(inner)
            }
            Statement::Loop {
                mut body,
                mut continuing,
                break_if,
            } => {
                prune(&mut body, expressions);
                prune(&mut continuing, expressions);
                Statement::Loop {
                    body,
                    continuing,
                    break_if,
                }
            }
            Statement::Switch {
                selector,
                mut cases,
            } => {
                for case in &mut cases {
                    prune(&mut case.body, expressions);
                }
                Statement::Switch { selector, cases }
            }
            other => other,
        };
        block.push(statement, span);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SOURCE: &str = "
override FLAG: u32 = 0u;
override WG: u32 = 64u;
@group(0) @binding(0) var<storage, read_write> out: array<f32>;
fn heavy(x: f32) -> f32 { return sqrt(x) + exp(x); }
@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    var v = 1.0;
    if (FLAG == 1u) {
        v = heavy(v);
    } else {
        v = v + 2.0;
    }
    if (gid.x > 3u) {
        v = v * 2.0;
    }
    out[gid.x] = v;
}
@compute @workgroup_size(WG)
fn other() { out[0] = heavy(3.0); }
";

    fn ifs(block: &Block) -> usize {
        block
            .iter()
            .map(|s| match s {
                Statement::If { accept, reject, .. } => 1 + ifs(accept) + ifs(reject),
                Statement::Block(b) => ifs(b),
                Statement::Loop {
                    body, continuing, ..
                } => ifs(body) + ifs(continuing),
                _ => 0,
            })
            .sum()
    }

    #[test]
    fn decided_branches_and_unreached_functions_go() {
        let m = specialise(SOURCE, "main", &[("FLAG", 0.0), ("WG", 32.0)]).unwrap();
        assert_eq!(m.entry_points.len(), 1, "only the entry point asked for");
        let ep = &m.entry_points[0];
        assert_eq!(ep.workgroup_size, [32, 1, 1]);
        assert!(m.overrides.is_empty());
        // The FLAG branch is decided; the one on the invocation id stays.
        assert_eq!(ifs(&ep.function.body), 1);
        assert!(m.functions.is_empty(), "heavy() is reached by nothing left");
        assert_eq!(bindings(&m), vec![0]);
        // With the flag set, heavy() is called and kept.
        let m = specialise(SOURCE, "main", &[("FLAG", 1.0)]).unwrap();
        assert_eq!(m.functions.len(), 1);
        assert_eq!(ifs(&m.entry_points[0].function.body), 1);
    }

    #[test]
    fn every_stage_names_its_failure() {
        assert!(specialise("fn (", "main", &[]).is_err());
        let e = specialise(SOURCE, "main", &[("NOT_THERE", 1.0)]).unwrap_err();
        assert!(e.starts_with("overrides"), "{e}");
    }
}
