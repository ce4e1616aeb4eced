//! Placeholder until the data reader lands.
pub struct SampleTable {
    pub rows: usize,
    pub dim: usize,
    pub values: Vec<f32>,
}
