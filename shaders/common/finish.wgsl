// The last act of a step kernel: stores particle i and counts it in `nonfinite[0]` when a
// coordinate is NaN or Inf (the divergence check). The including shader declares the
// read_write storage array of atomic<u32> `nonfinite`; needs common/state.wgsl.

fn finish(i: u32, x: Point) {
    if (!point_is_finite(x)) {
        atomicAdd(&nonfinite[0], 1u);
    }
    store_point(i, x);
}
