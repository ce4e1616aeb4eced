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
    hoist_uniforms(&mut module);
    validator
        .validate(&module)
        .map_err(|e| format!("validation after pruning: {:?}", e.into_inner()))?;
    Ok(module)
}

/// Uniform arrays that every kernel reads only at indices known once it is inlined
/// (common/boundary.wgsl's walls and regions: literal target numbers, axes below DIM), so
/// that their private copies become registers. The other uniform arrays are tables read
/// at run-time indices (a step's coefficients, a window of samples): a private copy of
/// those would live in scratch memory and be copied whole by every invocation.
const CONSTANT_INDEXED: &[&str] = &["bounds"];

/// Gives every uniform of a type without arrays (a `Step`, a `Chunk`, a `Point`), and the
/// arrays of [`CONSTANT_INDEXED`], a private copy taken once at the start of each entry
/// point, and points every read at the copy. Uniforms are read-only, so the copy is the
/// same value.
///
/// Why: llvmpipe reads a uniform inside a loop as a per-lane gather (the inactive lanes
/// pointed at word 0): eight scalar loads for one value, at every step of a fused loop. A
/// private copy is a register. The plain Langevin loop lost a quarter of its instructions
/// (the key and the step count were re-read every round) and runs about 12% faster; the
/// walls' and targets' bounds were re-read at every step the same way (docs/architecture.md,
/// "Start-up").
pub fn hoist_uniforms(module: &mut naga::Module) {
    let candidates: Vec<_> = module
        .global_variables
        .iter()
        .filter(|(_, g)| {
            g.space == naga::AddressSpace::Uniform
                && (!holds_array(&module.types, g.ty)
                    || g.name
                        .as_deref()
                        .is_some_and(|n| CONSTANT_INDEXED.contains(&n)))
        })
        .map(|(h, _)| h)
        .collect();
    if candidates.is_empty() {
        return;
    }
    let copies: Vec<_> = candidates
        .iter()
        .map(|&h| {
            let g = &module.global_variables[h];
            let copy = naga::GlobalVariable {
                name: g.name.as_ref().map(|n| format!("{n}_copy")),
                space: naga::AddressSpace::Private,
                binding: None,
                ty: g.ty,
                init: None,
                memory_decorations: Default::default(),
            };
            (h, module.global_variables.append(copy, Default::default()))
        })
        .collect();
    let redirect = |f: &mut naga::Function| {
        for (_, e) in f.expressions.iter_mut() {
            if let Expression::GlobalVariable(h) = e
                && let Some(&(_, copy)) = copies.iter().find(|(o, _)| o == h)
            {
                *h = copy;
            }
        }
    };
    for (_, f) in module.functions.iter_mut() {
        redirect(f);
    }
    for ep in module.entry_points.iter_mut() {
        let f = &mut ep.function;
        redirect(f);
        let mut start = Block::new();
        for &(original, copy) in &copies {
            let span = Default::default();
            let from = f
                .expressions
                .append(Expression::GlobalVariable(original), span);
            let value = f
                .expressions
                .append(Expression::Load { pointer: from }, span);
            let to = f.expressions.append(Expression::GlobalVariable(copy), span);
            start.push(
                Statement::Emit(naga::Range::new_from_bounds(value, value)),
                span,
            );
            start.push(Statement::Store { pointer: to, value }, span);
        }
        start.extend_block(std::mem::take(&mut f.body));
        f.body = start;
    }
}

/// Whether type `ty` is or contains an array.
fn holds_array(types: &naga::UniqueArena<naga::Type>, ty: naga::Handle<naga::Type>) -> bool {
    match &types[ty].inner {
        naga::TypeInner::Array { .. } | naga::TypeInner::BindingArray { .. } => true,
        naga::TypeInner::Struct { members, .. } => members.iter().any(|m| holds_array(types, m.ty)),
        _ => false,
    }
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

    const UNIFORMS: &str = "
struct Step { key: vec2<u32>, steps: u32, dt: f32 }
@group(0) @binding(0) var<storage, read_write> out: array<f32>;
@group(0) @binding(1) var<uniform> step: Step;
@group(0) @binding(2) var<uniform> table: array<vec4<f32>, 4>;
@group(0) @binding(3) var<uniform> bounds: array<vec4<f32>, 4>;
fn advance(x: f32, s: u32) -> f32 { return x + step.dt * table[s & 3u].x + bounds[1].y; }
@compute @workgroup_size(8)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    var x = 0.0;
    for (var s = 0u; s < step.steps; s = s + 1u) { x = advance(x, s); }
    out[gid.x] = x;
}
";

    /// The globals that expressions of `f` name.
    fn named_globals(f: &naga::Function) -> Vec<naga::Handle<naga::GlobalVariable>> {
        f.expressions
            .iter()
            .filter_map(|(_, e)| match e {
                Expression::GlobalVariable(h) => Some(*h),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn uniforms_are_read_once_per_invocation_from_a_private_copy() {
        let m = specialise(UNIFORMS, "main", &[]).unwrap();
        let by_name = |name: &str, space| {
            m.global_variables
                .iter()
                .find(|(_, g)| g.name.as_deref() == Some(name) && g.space == space)
                .map(|(h, _)| h)
        };
        let uniform = naga::AddressSpace::Uniform;
        let private = naga::AddressSpace::Private;
        let step = by_name("step", uniform).unwrap();
        let step_copy = by_name("step_copy", private).unwrap();
        let bounds = by_name("bounds", uniform).unwrap();
        let bounds_copy = by_name("bounds_copy", private).unwrap();
        let table = by_name("table", uniform).unwrap();
        assert!(
            by_name("table_copy", private).is_none(),
            "a table read at run-time indices stays"
        );
        // The helper reads the copies (and the table itself), never the uniforms.
        let helper = m.functions.iter().next().unwrap().1;
        let read = named_globals(helper);
        assert!(read.contains(&step_copy) && read.contains(&bounds_copy) && read.contains(&table));
        assert!(!read.contains(&step) && !read.contains(&bounds));
        // The entry point starts by storing each copy: two loads of the uniforms, then the
        // loop reads the copy.
        let ep = &m.entry_points[0].function;
        let stores: Vec<_> = ep
            .body
            .iter()
            .take(4)
            .filter_map(|s| match s {
                Statement::Store { pointer, .. } => Some(ep.expressions[*pointer].clone()),
                _ => None,
            })
            .collect();
        assert_eq!(stores.len(), 2, "{:?}", ep.body);
        for copy in [step_copy, bounds_copy] {
            assert!(stores.contains(&Expression::GlobalVariable(copy)));
        }
        let uniform_reads = named_globals(ep).iter().filter(|h| **h == step).count();
        assert_eq!(
            uniform_reads, 1,
            "the uniform itself is read once, for the copy"
        );
    }

    #[test]
    fn every_stage_names_its_failure() {
        assert!(specialise("fn (", "main", &[]).is_err());
        let e = specialise(SOURCE, "main", &[("NOT_THERE", 1.0)]).unwrap_err();
        assert!(e.starts_with("overrides"), "{e}");
    }
}
