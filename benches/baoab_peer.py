#!/usr/bin/env python3
"""Reference peer for the underdamped (BAOAB) benchmark: the L2 workload of ../shared/BENCHMARKS.md
with velocities. Written in the style of ../shared/peers/langevin_peer.py.

Underdamped Langevin  dX = V dt,  m dV = -grad U(X) dt - gamma m V dt + sqrt(2 gamma m T) dW
in the 2D double well U(x, y) = (x^2 - 1)^2 + y^2 / 2, T = 1, gamma = 1, m = 1, dt = 1e-3,
by BAOAB (Leimkuhler & Matthews):
    B: v -= (dt / 2m) grad U(x)      A: x += (dt / 2) v
    O: v <- c v + sqrt((1 - c^2) T / m) xi,  c = exp(-gamma dt)
    A: x += (dt / 2) v               B: v -= (dt / 2m) grad U(x)
(the closing kick's gradient is the next step's opening one, computed once, as fokker does).
All particles start at the origin with Maxwell velocities N(0, T / m) per axis. After the last
step the positions are binned on [-2.5, 2.5]^2 with 128 x 128 bins.

Prints one JSON line: impl, workload, particles, steps, seconds (initial velocities, stepping
and histogram; compile excluded for JAX), particle_steps_per_s, in_range (histogram total).
With --out it also saves the histogram (int64, shape (128, 128), indexed [x_bin, y_bin]).
"""
import argparse, json, math, time
import numpy as np

EDGE, BINS = 2.5, 128


def coefficients(dt, temp, gamma, mass):
    c = math.exp(-gamma * dt)
    return c, math.sqrt((1.0 - c * c) * temp / mass), math.sqrt(temp / mass), dt / (2.0 * mass)


def run_numpy(n, steps, dt, temp, gamma, mass, seed):
    rng = np.random.default_rng(seed)
    c, s_ou, s_v, hm = (np.float32(v) for v in coefficients(dt, temp, gamma, mass))
    h = np.float32(0.5 * dt)
    t0 = time.perf_counter()
    x = np.zeros(n, np.float32)
    y = np.zeros(n, np.float32)
    vx = s_v * rng.standard_normal(n, dtype=np.float32)
    vy = s_v * rng.standard_normal(n, dtype=np.float32)
    gx = 4.0 * x * (x * x - 1.0)
    gy = y.copy()
    for _ in range(steps):
        vx -= hm * gx
        vy -= hm * gy
        x += h * vx
        y += h * vy
        vx = c * vx + s_ou * rng.standard_normal(n, dtype=np.float32)
        vy = c * vy + s_ou * rng.standard_normal(n, dtype=np.float32)
        x += h * vx
        y += h * vy
        gx = 4.0 * x * (x * x - 1.0)
        gy = y
        vx -= hm * gx
        vy -= hm * gy
    hist, _, _ = np.histogram2d(x, y, bins=BINS, range=[[-EDGE, EDGE], [-EDGE, EDGE]])
    return time.perf_counter() - t0, hist.astype(np.int64)


def run_jax(n, steps, dt, temp, gamma, mass, seed):
    import jax
    import jax.numpy as jnp

    c, s_ou, s_v, hm = coefficients(dt, temp, gamma, mass)
    h = 0.5 * dt

    @jax.jit
    def simulate(key):
        def grad(x, y):
            return 4.0 * x * (x * x - 1.0), y

        def body(i, state):
            x, y, vx, vy, gx, gy, key = state
            key, kx, ky = jax.random.split(key, 3)
            vx = vx - hm * gx
            vy = vy - hm * gy
            x = x + h * vx
            y = y + h * vy
            vx = c * vx + s_ou * jax.random.normal(kx, (n,), jnp.float32)
            vy = c * vy + s_ou * jax.random.normal(ky, (n,), jnp.float32)
            x = x + h * vx
            y = y + h * vy
            gx, gy = grad(x, y)
            vx = vx - hm * gx
            vy = vy - hm * gy
            return x, y, vx, vy, gx, gy, key

        key, kx, ky = jax.random.split(key, 3)
        x0 = jnp.zeros(n, jnp.float32)
        vx0 = s_v * jax.random.normal(kx, (n,), jnp.float32)
        vy0 = s_v * jax.random.normal(ky, (n,), jnp.float32)
        gx0, gy0 = grad(x0, x0)
        x, y, *_ = jax.lax.fori_loop(0, steps, body, (x0, x0, vx0, vy0, gx0, gy0, key))
        hist, _, _ = jnp.histogram2d(x, y, bins=BINS, range=[[-EDGE, EDGE], [-EDGE, EDGE]])
        return hist

    key = jax.random.PRNGKey(seed)
    simulate(key).block_until_ready()  # compile
    t0 = time.perf_counter()
    hist = simulate(jax.random.PRNGKey(seed + 1)).block_until_ready()
    return time.perf_counter() - t0, np.asarray(hist).astype(np.int64)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--impl", choices=["numpy", "jax"], default="numpy")
    p.add_argument("--particles", type=int, default=1_000_000)
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--dt", type=float, default=1e-3)
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--gamma", type=float, default=1.0)
    p.add_argument("--mass", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", help="save the final histogram as .npy")
    a = p.parse_args()
    run = {"numpy": run_numpy, "jax": run_jax}[a.impl]
    secs, hist = run(a.particles, a.steps, a.dt, a.temperature, a.gamma, a.mass, a.seed)
    if a.out:
        np.save(a.out, hist)
    # Check: from the origin at t = steps dt nearly every particle is still in range, and the
    # x marginal is symmetric about 0 (left half vs right half of the histogram).
    left, right = int(hist[: BINS // 2].sum()), int(hist[BINS // 2:].sum())
    print(json.dumps({"impl": a.impl, "workload": "BAOAB", "particles": a.particles, "steps": a.steps,
                      "seconds": round(secs, 4),
                      "particle_steps_per_s": a.particles * a.steps / secs,
                      "in_range": int(hist.sum()),
                      "x_left_right": [left, right]}))


if __name__ == "__main__":
    main()
