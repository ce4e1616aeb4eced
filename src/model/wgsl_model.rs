//! Models written directly in WGSL by power users (`wgsl = "my_model.wgsl"`): the file's
//! functions take the place of the generated ones in a shader's user region
//! (src/shaders.rs), with the documented signatures
//!
//! ```wgsl
//! fn user_gradient(x: Point, t: f32) -> Point           // potential = { wgsl = ... }
//! fn user_drift(x: Point, t: f32) -> Point              // kind = "sde", wgsl = ...
//! fn user_diffusion(x: Point, t: f32) -> f32
//! ```
//!
//! where `Point` holds coordinates 0..3 in `x.a` and 4..7 in `x.b`, and each param `k` is
//! read by the generated accessor `param_k()` (values in a buffer: changing one needs no
//! recompile). The plan records the file's text, so a run directory describes its model
//! completely and resumes without the file. There is no CPU form: CPU twins and grid
//! references need expressions.

use super::expr::Params;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WgslModel {
    /// The file as written in the scenario.
    pub wgsl: String,
    /// Its text.
    pub code: String,
    #[serde(default)]
    pub params: Params,
}

impl WgslModel {
    /// The file's code preceded by `fn param_NAME() -> f32` for every param, reading
    /// `array[offset + k]`.
    pub fn code_with_params(&self, array: &str, offset: usize) -> String {
        let mut out = String::new();
        for (k, name) in self.params.keys().enumerate() {
            out.push_str(&format!(
                "fn param_{name}() -> f32 {{ return {array}[{}u]; }}\n",
                offset + k
            ));
        }
        out.push_str(&self.code);
        if !self.code.ends_with('\n') {
            out.push('\n');
        }
        out
    }

    pub fn params(&self) -> Vec<f64> {
        self.params.values().copied().collect()
    }
}
