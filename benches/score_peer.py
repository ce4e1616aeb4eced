#!/usr/bin/env python3
"""The empirical-score kernel of ../shared/peers/sdflow_peer.py alone, for comparison with
fokker's kernel sum (benches/kernel.rs): N queries z against M data points x, the Gaussian
kernel weighted mean  sum_j K(z, x_j) x_j / sum_j K(z, x_j),  K(a, b) = exp(-|a - b|^2 / (2 s^2)).
`denoise` is the peer's function verbatim (jax.lax.map over queries, batch 256), jitted; the
time excludes compilation. Prints one JSON line with interactions (query-point pairs) per second.
"""
import argparse, json, time
import numpy as np


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, default=16384)
    p.add_argument("--m", type=int, default=16384)
    p.add_argument("--sigma", type=float, default=0.1)
    p.add_argument("--repeat", type=int, default=3)
    a = p.parse_args()
    import jax
    import jax.numpy as jnp

    sigma = a.sigma

    def denoise(z, pts):
        def one(zi):
            w = jnp.exp(-0.5 / sigma**2 * jnp.sum((pts - zi) ** 2, axis=1))
            return (w @ pts) / jnp.sum(w)
        return jax.lax.map(one, z, batch_size=256)

    rng = np.random.default_rng(0)
    z = jnp.asarray(rng.standard_normal((a.n, 2)).astype(np.float32))
    x = jnp.asarray(rng.standard_normal((a.m, 2)).astype(np.float32))
    f = jax.jit(denoise)
    f(z, x).block_until_ready()  # compile
    t0 = time.perf_counter()
    for _ in range(a.repeat):
        f(z, x).block_until_ready()
    secs = time.perf_counter() - t0
    print(json.dumps({"impl": "jax", "workload": "kernel_sum", "n": a.n, "m": a.m, "sigma": sigma,
                      "seconds": round(secs, 4), "interactions_per_s": a.repeat * a.n * a.m / secs}))


if __name__ == "__main__":
    main()
