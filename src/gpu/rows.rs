//! Particle rows read and written whole. The composed shaders reach the particles' `state`
//! array through accessors that build.rs generates, one f32 per coordinate:
//! `read_state(o)` loads DIM floats from float o into a Point and `write_state(o, p)` stores
//! them. Where every access goes through them at a whole row (`o` written `i * DIM`), build.rs
//! puts them between two marker lines, and for DIM = 2, 4 or 8 [`vectorise`] declares `state`
//! as an array of vec2 or vec4 (the same bytes: a packed row of two or four floats is one
//! vec2 or vec4, eight are two vec4s) and swaps the accessors for ones that move whole
//! vectors. The same positions either way (tests/rows_gpu.rs). A software adapter turns a
//! storage access at a per-lane address into a scalar loop over the lanes, one per load or
//! store (docs/architecture.md, "Whole-vector rows"), so a 2D row then costs one such loop
//! instead of two. build.rs includes this file too and validates every variant.

pub const BEGIN: &str = "// ROWS state BEGIN\n";
pub const END: &str = "// ROWS state END\n";

/// The declaration of `state` as the accessors find it, from the end of its access mode
/// (`var<storage, read_write> state: array<f32>;`).
const SCALAR: &str = "> state: array<f32>;";

/// The DIM values [`vectorise`] handles.
pub const DIMS: [u32; 3] = [2, 4, 8];

/// `source` with `state` declared as whole-row vectors for `dim` and its accessors moving
/// them; `None` when the source has no marked accessors or `dim` is not 2, 4 or 8.
pub fn vectorise(source: &str, dim: u32) -> Option<String> {
    let begin = source.find(BEGIN)?;
    let end = begin + source[begin..].find(END)? + END.len();
    let (vector, read, write) = match dim {
        2 => (
            "vec2<f32>",
            "Point(vec4<f32>(state[o / 2u], 0.0, 0.0), vec4<f32>(0.0))",
            "state[o / 2u] = p.a.xy;",
        ),
        4 => (
            "vec4<f32>",
            "Point(state[o / 4u], vec4<f32>(0.0))",
            "state[o / 4u] = p.a;",
        ),
        8 => (
            "vec4<f32>",
            "Point(state[o / 4u], state[o / 4u + 1u])",
            "state[o / 4u] = p.a;\n    state[o / 4u + 1u] = p.b;",
        ),
        _ => return None,
    };
    let mut accessors =
        format!("{BEGIN}fn read_state(o: u32) -> Point {{\n    return {read};\n}}\n");
    if source[begin..end].contains("fn write_state(") {
        accessors.push_str(&format!(
            "fn write_state(o: u32, p: Point) {{\n    {write}\n}}\n"
        ));
    }
    accessors.push_str(END);
    let head = &source[..begin];
    let at = head.find(SCALAR)?;
    if head[at + SCALAR.len()..].contains(SCALAR) {
        return None;
    }
    Some(format!(
        "{}> state: array<{vector}>;{}{accessors}{}",
        &head[..at],
        &head[at + SCALAR.len()..],
        &source[end..]
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn composed(write: bool) -> String {
        let mut accessors =
            String::from("fn read_state(o: u32) -> Point { return zero_point(); }\n");
        if write {
            accessors.push_str("fn write_state(o: u32, p: Point) {}\n");
        }
        format!(
            "var<storage, read_write> mystate: array<f32>;\n\
             @group(0) @binding(0) var<storage, read_write> state: array<f32>;\n\
             fn main() {{}}\n{BEGIN}{accessors}{END}fn after() {{}}\n"
        )
    }

    #[test]
    fn rows_become_vectors_for_two_four_and_eight_coordinates() {
        let source = composed(true);
        let two = vectorise(&source, 2).expect("DIM 2");
        assert!(two.contains("read_write> state: array<vec2<f32>>;"));
        assert!(
            two.contains("mystate: array<f32>;"),
            "another array is left alone"
        );
        assert!(two.contains("state[o / 2u] = p.a.xy;"));
        assert!(two.contains("fn main() {}") && two.ends_with("fn after() {}\n"));
        assert!(
            !two.contains("zero_point()"),
            "the scalar accessors are gone"
        );
        let four = vectorise(&source, 4).expect("DIM 4");
        assert!(four.contains("state: array<vec4<f32>>;") && four.contains("state[o / 4u] = p.a;"));
        let eight = vectorise(&source, 8).expect("DIM 8");
        assert!(eight.contains("Point(state[o / 4u], state[o / 4u + 1u])"));
        assert!(eight.contains("state[o / 4u + 1u] = p.b;"));
    }

    #[test]
    fn other_dims_unmarked_sources_and_read_only_rows() {
        let source = composed(true);
        for dim in [1, 3, 5, 6, 7] {
            assert_eq!(vectorise(&source, dim), None, "DIM {dim}");
        }
        let unmarked = source.replace(BEGIN, "").replace(END, "");
        assert_eq!(vectorise(&unmarked, 2), None);
        let read_only = vectorise(&composed(false), 2).expect("read-only rows");
        assert!(!read_only.contains("fn write_state"));
        let twice = source.replacen(
            "fn main",
            "var<storage, read> state: array<f32>;\nfn main",
            1,
        );
        assert_eq!(vectorise(&twice, 2), None, "two declarations of state");
    }
}
