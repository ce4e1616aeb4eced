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
    // The overrides are constants now; a switch on one needs its value as a literal.
    let literals: Vec<_> = module
        .constants
        .iter()
        .filter_map(|(h, c)| match module.global_expressions[c.init] {
            Expression::Literal(l) => Some((h, l)),
            _ => None,
        })
        .collect();
    for f in every_function(&mut module.functions, &mut module.entry_points) {
        for (_, e) in f.expressions.iter_mut() {
            if let Expression::Constant(h) = *e
                && let Some(&(_, l)) = literals.iter().find(|(c, _)| *c == h)
            {
                *e = Expression::Literal(l);
            }
        }
    }
    for f in every_function(&mut module.functions, &mut module.entry_points) {
        prune(&mut f.body, &f.expressions);
        // `compact` keeps every named expression (a `let`) alive, also one whose statement
        // was cut out with its branch: the result of a call no longer made would then keep
        // pointing at a function `compact` drops. The names only label the driver's input.
        f.named_expressions.clear();
    }
    naga::compact::compact(&mut module, naga::compact::KeepUnused::No);
    hoist_uniforms(&mut module);
    hoist_constant_reads(&mut module);
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
    let copies: Vec<PrivateCopy> = candidates
        .iter()
        .map(|&source| {
            let g = &module.global_variables[source];
            let copy = private_variable(g.name.as_ref().map(|n| format!("{n}_copy")), g.ty);
            PrivateCopy {
                source,
                element: None,
                copy: module.global_variables.append(copy, Default::default()),
            }
        })
        .collect();
    for f in every_function(&mut module.functions, &mut module.entry_points) {
        for (_, e) in f.expressions.iter_mut() {
            if let Expression::GlobalVariable(h) = e
                && let Some(c) = copies.iter().find(|c| c.source == *h)
            {
                *h = c.copy;
            }
        }
    }
    for ep in module.entry_points.iter_mut() {
        store_copies_at_start(&mut ep.function, &copies);
    }
}

/// Gives every element of a read-only storage array that the module reads at a constant
/// index (an expression potential's `potential_params[3u]`, a built-in potential's scale)
/// a private copy taken at the start of each entry point, and points those reads at it.
///
/// Why: as for uniforms ([`hoist_uniforms`]), llvmpipe repeats such a load inside a loop for
/// every lane; an expression potential whose coefficients are params (so that `--set` does
/// not recompile) stepped about 16% slower than the same potential with literals. Reads at
/// run-time indices (tables, mixture components) are left as they are.
pub fn hoist_constant_reads(module: &mut naga::Module) {
    use naga::{AddressSpace, StorageAccess, TypeInner};
    // The read-only storage arrays of scalars or vectors, with their element type.
    let arrays: Vec<_> = module
        .global_variables
        .iter()
        .filter_map(|(h, g)| {
            let AddressSpace::Storage { access } = g.space else {
                return None;
            };
            if access.intersects(StorageAccess::STORE | StorageAccess::ATOMIC) {
                return None;
            }
            let TypeInner::Array { base, .. } = module.types[g.ty].inner else {
                return None;
            };
            matches!(
                module.types[base].inner,
                TypeInner::Scalar(_) | TypeInner::Vector { .. }
            )
            .then_some((h, base))
        })
        .collect();
    if arrays.is_empty() {
        return;
    }
    // The element a pointer expression names: (array, constant index).
    let element = |f: &naga::Function, pointer: naga::Handle<Expression>| {
        let (base, index) = match f.expressions[pointer] {
            Expression::AccessIndex { base, index } => (base, index),
            Expression::Access { base, index } => match f.expressions[index] {
                Expression::Literal(Literal::U32(i)) => (base, i),
                Expression::Literal(Literal::I32(i)) if i >= 0 => (base, i as u32),
                _ => return None,
            },
            _ => return None,
        };
        match f.expressions[base] {
            Expression::GlobalVariable(g) => arrays
                .iter()
                .find(|(a, _)| *a == g)
                .map(|&(a, ty)| (a, index, ty)),
            _ => None,
        }
    };
    // Every pointer to such an element, in every function, becomes the copy's pointer, in
    // place (a pointer expression is replaced by one with no operands, so no expression
    // comes to depend on a later one); the storage is read-only, so every use is a read.
    let mut copies: Vec<PrivateCopy> = Vec::new();
    let globals = &mut module.global_variables;
    for f in every_function(&mut module.functions, &mut module.entry_points) {
        // Only expressions the (pruned) body still evaluates: a dropped branch's stay in
        // the arena until `compact`.
        let mut live = Vec::new();
        emitted(&f.body, &mut live);
        let found: Vec<_> = live
            .into_iter()
            .filter_map(|h| element(f, h).map(|e| (h, e)))
            .collect();
        for &(h, (source, index, ty)) in &found {
            let element = Some(index);
            let copy = match copies
                .iter()
                .find(|c| c.source == source && c.element == element)
            {
                Some(c) => c.copy,
                None => {
                    let name = globals[source]
                        .name
                        .as_ref()
                        .map(|n| format!("{n}_{index}"));
                    let copy = globals.append(private_variable(name, ty), Default::default());
                    copies.push(PrivateCopy {
                        source,
                        element,
                        copy,
                    });
                    copy
                }
            };
            f.expressions[h] = Expression::GlobalVariable(copy);
        }
        // A global's pointer is in scope from the start: take it out of the Emit ranges.
        let replaced: Vec<_> = found.iter().map(|&(h, _)| h).collect();
        unemit(&mut f.body, &replaced);
    }
    for ep in module.entry_points.iter_mut() {
        store_copies_at_start(&mut ep.function, &copies);
    }
}

/// A private copy of a uniform (`element` None) or of one element of a read-only storage
/// array, stored at the start of each entry point.
struct PrivateCopy {
    source: naga::Handle<naga::GlobalVariable>,
    element: Option<u32>,
    copy: naga::Handle<naga::GlobalVariable>,
}

/// A `var<private>` named `name` of type `ty`.
fn private_variable(name: Option<String>, ty: naga::Handle<naga::Type>) -> naga::GlobalVariable {
    naga::GlobalVariable {
        name,
        space: naga::AddressSpace::Private,
        binding: None,
        ty,
        init: None,
        memory_decorations: Default::default(),
    }
}

/// Prepends to `f`'s body, for each of `copies`, a load of its source (or of the element)
/// stored into the copy.
fn store_copies_at_start(f: &mut naga::Function, copies: &[PrivateCopy]) {
    let span = Default::default();
    let mut start = Block::new();
    for c in copies {
        let source = f
            .expressions
            .append(Expression::GlobalVariable(c.source), span);
        let (first, pointer) = match c.element {
            Some(index) => {
                let at = f.expressions.append(
                    Expression::AccessIndex {
                        base: source,
                        index,
                    },
                    span,
                );
                (Some(at), at)
            }
            None => (None, source),
        };
        let value = f.expressions.append(Expression::Load { pointer }, span);
        let to = f
            .expressions
            .append(Expression::GlobalVariable(c.copy), span);
        start.push(
            Statement::Emit(naga::Range::new_from_bounds(first.unwrap_or(value), value)),
            span,
        );
        start.push(Statement::Store { pointer: to, value }, span);
    }
    start.extend_block(std::mem::take(&mut f.body));
    f.body = start;
}

/// The functions and the entry points' functions of a module (its two fields, borrowed
/// apart from the rest).
fn every_function<'a>(
    functions: &'a mut naga::Arena<naga::Function>,
    entry_points: &'a mut [naga::EntryPoint],
) -> impl Iterator<Item = &'a mut naga::Function> {
    let entries = entry_points.iter_mut().map(|ep| &mut ep.function);
    functions.iter_mut().map(|(_, f)| f).chain(entries)
}

/// Splits the Emit ranges of `block` (and of the blocks inside it) around the expressions
/// of `skip`.
fn unemit(block: &mut Block, skip: &[naga::Handle<Expression>]) {
    let old = std::mem::take(block);
    for (statement, span) in old.span_into_iter() {
        match statement {
            Statement::Emit(range) => {
                let mut run: Option<(naga::Handle<Expression>, naga::Handle<Expression>)> = None;
                for h in range.clone() {
                    if skip.contains(&h) {
                        if let Some((first, last)) = run.take() {
                            block.push(
                                Statement::Emit(naga::Range::new_from_bounds(first, last)),
                                span,
                            );
                        }
                    } else {
                        run = Some(run.map_or((h, h), |(first, _)| (first, h)));
                    }
                }
                if let Some((first, last)) = run {
                    block.push(
                        Statement::Emit(naga::Range::new_from_bounds(first, last)),
                        span,
                    );
                }
            }
            mut other => {
                for_each_block(&mut other, |b| unemit(b, skip));
                block.push(other, span);
            }
        }
    }
}

/// The expressions of the Emit ranges of `block` and of the blocks inside it.
fn emitted(block: &Block, out: &mut Vec<naga::Handle<Expression>>) {
    for statement in block.iter() {
        match statement {
            Statement::Emit(range) => out.extend(range.clone()),
            Statement::Block(b) => emitted(b, out),
            Statement::If { accept, reject, .. } => {
                emitted(accept, out);
                emitted(reject, out);
            }
            Statement::Loop {
                body, continuing, ..
            } => {
                emitted(body, out);
                emitted(continuing, out);
            }
            Statement::Switch { cases, .. } => {
                for case in cases {
                    emitted(&case.body, out);
                }
            }
            _ => {}
        }
    }
}

/// Calls `visit` on each block directly inside `statement`.
fn for_each_block(statement: &mut Statement, mut visit: impl FnMut(&mut Block)) {
    match statement {
        Statement::Block(b) => visit(b),
        Statement::If { accept, reject, .. } => {
            visit(accept);
            visit(reject);
        }
        Statement::Loop {
            body, continuing, ..
        } => {
            visit(body);
            visit(continuing);
        }
        Statement::Switch { cases, .. } => {
            for case in cases {
                visit(&mut case.body);
            }
        }
        _ => {}
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
                match taken_case(&cases, &expressions[selector]) {
                    // The cases the switch runs (from the chosen one through its
                    // fall-throughs), unless one of them leaves the switch by `break`.
                    Some(first) => {
                        let last = (first..cases.len())
                            .find(|&k| !cases[k].fall_through)
                            .unwrap_or(cases.len() - 1);
                        // naga ends a case's body with the `break` WGSL leaves implicit.
                        let bodies: Vec<Block> = cases[first..=last]
                            .iter()
                            .map(|c| {
                                let mut body = c.body.clone();
                                if matches!(body.last(), Some(Statement::Break)) {
                                    body.cull(body.len() - 1..);
                                }
                                body
                            })
                            .collect();
                        if bodies.iter().any(breaks_out) {
                            Statement::Switch { selector, cases }
                        } else {
                            let mut taken = Block::new();
                            for body in bodies {
                                taken.extend_block(body);
                            }
                            Statement::Block(taken)
                        }
                    }
                    None => Statement::Switch { selector, cases },
                }
            }
            other => other,
        };
        block.push(statement, span);
    }
}

/// The case a switch on the literal `selector` takes (its value's, else the default);
/// `None` when the selector is not a literal.
fn taken_case(cases: &[naga::SwitchCase], selector: &Expression) -> Option<usize> {
    let value = match *selector {
        Expression::Literal(Literal::U32(v)) => naga::SwitchValue::U32(v),
        Expression::Literal(Literal::I32(v)) => naga::SwitchValue::I32(v),
        _ => return None,
    };
    cases.iter().position(|c| c.value == value).or_else(|| {
        cases
            .iter()
            .position(|c| c.value == naga::SwitchValue::Default)
    })
}

/// Whether `block` holds a `break` that would leave an enclosing switch (one not inside a
/// loop or switch of its own).
fn breaks_out(block: &Block) -> bool {
    block.iter().any(|s| match s {
        Statement::Break => true,
        Statement::Block(b) => breaks_out(b),
        Statement::If { accept, reject, .. } => breaks_out(accept) || breaks_out(reject),
        _ => false,
    })
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

    const READS: &str = "
override KIND: u32 = 0u;
@group(0) @binding(0) var<storage, read_write> out: array<f32>;
@group(0) @binding(1) var<storage, read> params: array<f32>;
@group(0) @binding(2) var<storage, read> rows: array<vec4<f32>>;
fn heavy(x: f32) -> f32 { return sqrt(x) + exp(x); }
fn pick(x: f32) -> f32 {
    switch KIND {
        case 0u: { return x * params[2u]; }
        case 1u, 2u: { return heavy(x) + rows[1u].y; }
        default: { return params[u32(x)]; }
    }
}
@compute @workgroup_size(8)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    var x = f32(gid.x);
    for (var s = 0u; s < 4u; s = s + 1u) { x = pick(x); }
    out[gid.x] = x;
}
";

    #[test]
    fn constant_reads_of_read_only_arrays_come_from_private_copies() {
        for (kind, copied) in [
            (0.0, vec!["params_2"]),
            (1.0, vec!["rows_1"]),
            (7.0, vec![]),
        ] {
            let m = specialise(READS, "main", &[("KIND", kind)]).unwrap();
            let mut private: Vec<_> = m
                .global_variables
                .iter()
                .filter(|(_, g)| g.space == naga::AddressSpace::Private)
                .filter_map(|(_, g)| g.name.clone())
                .collect();
            private.sort();
            assert_eq!(private, copied, "KIND = {kind}");
            // The switch on the override is gone: one case's body is left, and heavy()
            // only where that case calls it.
            let switches = m
                .functions
                .iter()
                .map(|(_, f)| switches(&f.body))
                .sum::<usize>();
            assert_eq!(switches, 0, "KIND = {kind}");
            assert_eq!(
                m.functions.len(),
                if kind == 1.0 { 2 } else { 1 },
                "KIND = {kind}"
            );
        }
    }

    fn switches(block: &Block) -> usize {
        block
            .iter()
            .map(|s| match s {
                Statement::Switch { cases, .. } => {
                    1 + cases.iter().map(|c| switches(&c.body)).sum::<usize>()
                }
                Statement::Block(b) => switches(b),
                Statement::If { accept, reject, .. } => switches(accept) + switches(reject),
                Statement::Loop {
                    body, continuing, ..
                } => switches(body) + switches(continuing),
                _ => 0,
            })
            .sum()
    }

    #[test]
    fn a_switch_left_by_break_is_kept() {
        const BREAKS: &str = "
override KIND: u32 = 0u;
@group(0) @binding(0) var<storage, read_write> out: array<f32>;
@compute @workgroup_size(8)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    var x = 1.0;
    for (var s = 0u; s < 4u; s = s + 1u) {
        switch KIND {
            case 0u: { if (gid.x > 2u) { break; } x = x + 1.0; }
            default: { x = x * 2.0; }
        }
    }
    out[gid.x] = x;
}
";
        // Case 0 breaks out of the switch (not the loop): made a plain block, its break
        // would leave the loop, so the switch stays. The default case does not.
        let kept = specialise(BREAKS, "main", &[("KIND", 0.0)]).unwrap();
        assert_eq!(switches(&kept.entry_points[0].function.body), 1);
        let gone = specialise(BREAKS, "main", &[("KIND", 1.0)]).unwrap();
        assert_eq!(switches(&gone.entry_points[0].function.body), 0);
    }

    #[test]
    fn every_stage_names_its_failure() {
        assert!(specialise("fn (", "main", &[]).is_err());
        let e = specialise(SOURCE, "main", &[("NOT_THERE", 1.0)]).unwrap_err();
        assert!(e.starts_with("overrides"), "{e}");
    }
}
