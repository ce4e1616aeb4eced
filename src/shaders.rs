//! The composed WGSL sources, validated by naga at build time (see build.rs), and the
//! run-time composition of user code: a shader with a user region (lines between
//! [`USER_BEGIN`] and [`USER_END`], each a one-line stub `fn NAME(...) ... { ... }`) takes
//! functions generated from the scenario's expressions in place of its stubs, and the
//! result is validated by naga before any pipeline is made (docs/architecture.md,
//! "Expressions").
include!(concat!(env!("OUT_DIR"), "/shaders.rs"));

pub const USER_BEGIN: &str = "// USER CODE BEGIN";
pub const USER_END: &str = "// USER CODE END";

/// `source` with the stub of each named function in its user region replaced by the given
/// code. A name with no stub is an internal error (the caller and the shader disagree).
pub fn with_user_functions(source: &str, functions: &[(&str, String)]) -> Result<String, String> {
    let begin = source
        .find(USER_BEGIN)
        .ok_or("the shader has no user region")?;
    let end = source[begin..]
        .find(USER_END)
        .map(|e| begin + e)
        .ok_or("the shader's user region is not closed")?;
    let mut region = String::new();
    let mut replaced = vec![false; functions.len()];
    for line in source[begin..end].lines() {
        let stub_of = functions
            .iter()
            .position(|(name, _)| line.starts_with(&format!("fn {name}(")));
        match stub_of {
            Some(k) => {
                region.push_str(&functions[k].1);
                replaced[k] = true;
            }
            None => {
                region.push_str(line);
                region.push('\n');
            }
        }
    }
    if let Some(k) = replaced.iter().position(|r| !r) {
        return Err(format!("the shader has no stub for `{}`", functions[k].0));
    }
    Ok(format!("{}{region}{}", &source[..begin], &source[end..]))
}

/// Parses and validates a composed shader with naga; the error is naga's report with the
/// offending line of generated or user code.
pub fn validate(source: &str) -> Result<(), String> {
    let module = naga::front::wgsl::parse_str(source).map_err(|e| e.emit_to_string(source))?;
    naga::valid::Validator::new(
        naga::valid::ValidationFlags::all(),
        naga::valid::Capabilities::empty(),
    )
    .validate(&module)
    .map_err(|e| e.emit_to_string(source))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stubs_are_replaced_and_the_result_validates() {
        assert!(validate(LANGEVIN).is_ok());
        let code =
            "fn user_gradient(x: Point, t: f32) -> Point {\n    return Point(x.a * t, x.b);\n}\n";
        let source = with_user_functions(LANGEVIN, &[("user_gradient", code.to_string())]).unwrap();
        assert!(source.contains("x.a * t"));
        assert!(
            !source
                .contains("fn user_gradient(x: Point, t: f32) -> Point { return poison_point(); }")
        );
        validate(&source).unwrap();
        // A function the shader does not stub, and code that does not compile.
        assert!(with_user_functions(LANGEVIN, &[("user_drift", String::new())]).is_err());
        let bad = with_user_functions(
            LANGEVIN,
            &[(
                "user_gradient",
                "fn user_gradient(x: Point, t: f32) -> Point { return 1.0; }\n".into(),
            )],
        )
        .unwrap();
        let e = validate(&bad).unwrap_err();
        assert!(e.contains("user_gradient") || e.contains("return"), "{e}");
    }
}
