#!/usr/bin/env python3
"""JAX peer for the diffusion samplers, the workload of benches/compare_diffusion.sh: sample a
three-component 2D Gaussian mixture (examples/diffusion/*.toml: weights 0.5/0.3/0.2, diagonal
covariances) from the N(0, I) prior through the VP process (beta linear 0.1 -> 20 on [0, 1]),
back from t_end = 1 to t_min = 1e-3 on a uniform grid, with the mixture's exact score

    s(x, t) = sum_k r_k(x, t) (-(x - a_t mu_k) / v_tk),  v_tk = a_t^2 std_k^2 + 1 - a_t^2,
    r_k = softmax_k(log w_k - sum_d [(x_d - a_t mu_kd)^2 / v_tkd + log v_tkd] / 2),

either by the reverse SDE (Euler-Maruyama, x <- x + [beta x / 2 + beta s] h + sqrt(beta h) xi,
1000 steps) or by the probability-flow ODE (Heun, dx/dt = -beta (x + s) / 2, 200 steps).
What a JAX user writes: one jitted lax.fori_loop, the per-step constants (a_t, v_tk, beta)
precomputed in float64 on the host and indexed in the loop, jax.random per step. After the
last step the positions are binned on [-3.5, 3.5]^2 with 128 x 128 bins, as fokker does.

Prints one JSON line: impl, sampler, particles, steps, seconds (stepping + histogram, compile
excluded), particle_steps_per_s, and the sample mean (a check: the mixture's is (-0.3, -0.35)).
"""
import argparse, json, time
import numpy as np

WEIGHTS = np.array([0.5, 0.3, 0.2])
MEANS = np.array([[-1.5, -1.0], [1.5, -0.5], [0.0, 1.5]])
STDS = np.array([[0.3, 0.3], [0.5, 0.2], [0.25, 0.25]])
BETA_MIN, BETA_MAX, T_END, T_MIN = 0.1, 20.0, 1.0, 1e-3
EDGE, BINS = 3.5, 128


def alpha(t):
    return np.exp(-0.5 * (BETA_MIN * t + 0.5 * t * t * (BETA_MAX - BETA_MIN)))


def constants(times):
    """Per time: beta, a_t, a_t mu_k (K, 2), 1 / v_tk (K, 2), log w_k - sum_d log v_tkd / 2."""
    a = alpha(times)[:, None, None]
    var = a**2 * STDS[None] ** 2 + (1.0 - a**2)
    logw = np.log(WEIGHTS)[None] - 0.5 * np.log(var).sum(-1)
    beta = BETA_MIN + times * (BETA_MAX - BETA_MIN)
    f32 = lambda v: np.asarray(v, np.float32)
    return f32(beta), f32(a * MEANS[None]), f32(1.0 / var), f32(logw)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--sampler", choices=["reverse_sde", "probability_flow"], default="reverse_sde")
    p.add_argument("--particles", type=int, default=1_000_000)
    p.add_argument("--steps", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    steps = a.steps or (1000 if a.sampler == "reverse_sde" else 200)
    import jax
    import jax.numpy as jnp

    times = np.linspace(T_END, T_MIN, steps + 1)
    h = np.float32((T_END - T_MIN) / steps)
    # Constants at every grid time (Heun's corrector needs the step's end as well).
    beta, amu, ivar, logw = (jnp.asarray(c) for c in constants(times))
    n = a.particles

    def score(x, i):
        d = x[:, None, :] - amu[i][None]                      # (n, K, 2)
        logr = logw[i][None] - 0.5 * jnp.sum(d * d * ivar[i][None], -1)
        r = jax.nn.softmax(logr, axis=-1)                     # (n, K)
        return -jnp.einsum("nk,nkd->nd", r, d * ivar[i][None])

    if a.sampler == "reverse_sde":
        def body(i, state):
            x, key = state
            key, k = jax.random.split(key)
            b = beta[i]
            x = x + (0.5 * b * x + b * score(x, i)) * h \
                + jnp.sqrt(b * h) * jax.random.normal(k, x.shape, jnp.float32)
            return x, key
    else:
        def velocity(x, i):  # dx/dt along decreasing t, so the step adds +h * velocity
            return 0.5 * beta[i] * (x + score(x, i))

        def body(i, state):
            x, key = state
            k1 = velocity(x, i)
            k2 = velocity(x + h * k1, i + 1)
            return x + 0.5 * h * (k1 + k2), key

    @jax.jit
    def simulate(key):
        key, k0 = jax.random.split(key)
        x0 = jax.random.normal(k0, (n, 2), jnp.float32)
        x, _ = jax.lax.fori_loop(0, steps, body, (x0, key))
        hist, _, _ = jnp.histogram2d(x[:, 0], x[:, 1], bins=BINS, range=[[-EDGE, EDGE], [-EDGE, EDGE]])
        return hist, jnp.mean(x, axis=0)

    jax.block_until_ready(simulate(jax.random.PRNGKey(a.seed)))  # compile
    t0 = time.perf_counter()
    _, mean = jax.block_until_ready(simulate(jax.random.PRNGKey(a.seed + 1)))
    secs = time.perf_counter() - t0
    print(json.dumps({"impl": "jax", "sampler": a.sampler, "particles": n, "steps": steps,
                      "mean": [round(float(m), 4) for m in mean],  # the mixture's: (-0.3, -0.35)
                      "seconds": round(secs, 4), "particle_steps_per_s": n * steps / secs}))


if __name__ == "__main__":
    main()
