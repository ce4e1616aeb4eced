//! The energy observables (src/observe/energy.rs, shaders/energy.wgsl): GPU sums against the
//! f64 twin on the same f32 particles, and at equilibrium in a harmonic well the
//! configurational and kinetic temperatures against T with the integrators' known
//! discretisation bias, within sampling error.

mod common;

use fokker::dynamics::langevin::LangevinPlan;
use fokker::dynamics::underdamped::{InitialVelocity, UnderdampedPlan};
use fokker::model::expr::{ExprPotential, PotentialSource};
use fokker::model::{Mixture, Potential, Temperature};
use fokker::observe::{EnergySums, energy_cpu};
use fokker::scenario::*;
use fokker::simulation::{Layout, Simulation};

fn plan(count: u64, dim: u32, init: Init, dynamics: DynamicsPlan) -> Plan {
    Plan {
        name: None,
        seed: 7,
        boundary: Default::default(),
        particles: ParticlesPlan { count, dim, init },
        dynamics,
        output: OutputPlan {
            every_steps: None,
            histogram: HistogramSpec {
                axes: vec![0],
                bins: vec![8],
                range: vec![[-3.0, 3.0]],
            },
            heatmap: HeatmapSpec {
                colormap: "viridis".into(),
                scale: Scale::Log,
            },
            particles: ParticlesOutput::None,
            gif: false,
            trajectories: 0,
            reference: None,
            marginals: Vec::new(),
        },
    }
}

fn langevin(potential: Potential, temperature: f64, dt: f64, steps: u64) -> DynamicsPlan {
    DynamicsPlan::Langevin(LangevinPlan {
        potential,
        temperature: Temperature::Constant(temperature),
        dt: dt.into(),
        steps,
        t_end: steps as f64 * dt,
        mala: false,
    })
}

fn underdamped(
    potential: Potential,
    temperature: f64,
    gamma: f64,
    mass: &[f64],
    dt: f64,
    steps: u64,
) -> DynamicsPlan {
    DynamicsPlan::Underdamped(UnderdampedPlan {
        potential,
        temperature,
        gamma,
        mass: mass.to_vec(),
        initial_velocity: InitialVelocity::Maxwell,
        dt,
        steps,
        t_end: steps as f64 * dt,
    })
}

/// Runs `plan` to its end: the energy sums, the positions and the velocities (if any).
fn run(plan: &Plan, layout: &Layout) -> (EnergySums, f64, Vec<f32>, Option<Vec<f32>>) {
    let gpu = common::gpu();
    let mut sim = Simulation::new(&gpu, plan, None, None, 0, plan.particles.count, layout)
        .expect("simulation");
    sim.advance_to(plan.dynamics.steps(), |_| Ok(()), &|| false)
        .expect("advance");
    let obs = sim.observe().expect("observe");
    (
        obs.energy.expect("energy observed"),
        obs.time,
        sim.positions().expect("positions"),
        sim.extra_state().expect("velocities"),
    )
}

fn harmonic(k: &[f64]) -> Potential {
    let d = k.len();
    Potential::Quadratic {
        matrix: (0..d)
            .map(|i| (0..d).map(|j| if i == j { k[i] } else { 0.0 }).collect())
            .collect(),
        center: vec![0.0; d],
    }
}

/// GPU sums against the f64 twin evaluated at the same (f32) particles and time. The
/// bound: each invocation adds ITEMS values in sequence and the workgroup tree adds log2 WG
/// levels, each addition within 1 ULP of the running sum, so the summation error is at most
/// (ITEMS + 8) u Σ|q_i|; each particle's f32 evaluation is within 1024 ULP of the
/// ensemble's largest |q| (the longest chains: the mixture's exp, within 3 + 2|l| ULP for
/// |l| ≤ 100 by WGSL's accuracy table, through the responsibility ratio and the products
/// of the scores; Müller–Brown's exps summed with cancellation against their largest
/// term), plus the time's f32 rounding, within the same envelope for |t| ≤ 1.
#[test]
fn gpu_energy_sums_match_the_f64_twin() {
    let u = f64::from(f32::EPSILON) / 2.0;
    let items = fokker::observe::energy::ITEMS as f64;
    let n = 5000u64;
    let dim = 3u32;
    let init = Init::Gaussian {
        mean: vec![0.2, -0.1, 0.3],
        std: vec![0.8, 0.6, 0.7],
    };
    let expr = Potential::Expr(
        ExprPotential::new(PotentialSource {
            expr: "x^4 - k*x*y + sin(y)*z^2 + exp(0.3*z) + t*x".into(),
            params: [("k".to_string(), 1.5)].into(),
            dim: 3,
        })
        .expect("compiles"),
    );
    let potentials = [
        Potential::Quadratic {
            matrix: vec![
                vec![2.0, 0.3, 0.0],
                vec![0.3, 1.0, -0.2],
                vec![0.0, -0.2, 0.5],
            ],
            center: vec![0.5, -1.0, 0.2],
        },
        Potential::DoubleWell,
        Potential::MuellerBrown { scale: 0.05 },
        Potential::Mixture(Mixture {
            weights: vec![0.3, 0.7],
            means: vec![vec![-1.0, 0.5, 0.0], vec![1.0, -0.5, 0.3]],
            stds: vec![vec![0.5, 0.8, 1.0], vec![0.7, 0.4, 0.6]],
        }),
        expr,
    ];
    // Small chunks: the partial sums of several chunks are added on the host.
    let layout = Layout {
        chunk_particles: Some(2048),
        ..Layout::default()
    };
    let mass = [1.0, 2.0, 0.5];
    for (which, potential) in potentials.iter().enumerate() {
        // The expression (last) runs underdamped, for the kinetic sum, for 20 steps so that
        // its t is observed at t != 0; the others take one tiny step (Müller–Brown's
        // exponentials run away from the far particles of the initial law).
        let dynamics = if which == potentials.len() - 1 {
            underdamped(potential.clone(), 0.5, 1.0, &mass, 0.01, 20)
        } else {
            langevin(potential.clone(), 0.5, 1e-5, 1)
        };
        let p = plan(n, dim, init.clone(), dynamics);
        let (gpu, t, x, v) = run(&p, &layout);
        let x: Vec<f64> = x.iter().map(|&a| f64::from(a)).collect();
        let v: Option<Vec<f64>> = v.map(|v| v.iter().map(|&a| f64::from(a)).collect());
        let cpu = energy_cpu(potential, &x, v.as_deref().map(|v| (v, &mass[..])), dim, t);
        assert_eq!(gpu.count, cpu.count);
        assert_eq!(gpu.count, n);
        // Per-particle values, for the bound.
        let per = |f: &dyn Fn(&[f64], usize) -> f64| -> (f64, f64) {
            let values: Vec<f64> = x
                .chunks_exact(dim as usize)
                .enumerate()
                .map(|(i, p)| f(p, i))
                .collect();
            let abs: f64 = values.iter().map(|q| q.abs()).sum();
            let max = values.iter().fold(0.0f64, |m, q| m.max(q.abs()));
            (abs, max)
        };
        let bound =
            |(abs, max): (f64, f64)| (items + 8.0) * u * abs + 1024.0 * u * max * n as f64 + 1e-30;
        let checks = [
            (
                "U",
                gpu.potential,
                cpu.potential,
                per(&|p, _| potential.value_at(p, t)),
            ),
            (
                "|grad U|^2",
                gpu.gradient2,
                cpu.gradient2,
                per(&|p, _| potential.gradient_at(p, t).iter().map(|g| g * g).sum()),
            ),
            (
                "Delta U",
                gpu.laplacian,
                cpu.laplacian,
                per(&|p, _| potential.laplacian_at(p, t)),
            ),
        ];
        for (name, g, c, magnitude) in checks {
            let tol = bound(magnitude);
            assert!(
                (g - c).abs() <= tol,
                "{potential:?}: {name} sum {g} on the GPU, {c} in f64 (bound {tol})"
            );
        }
        match (gpu.kinetic, cpu.kinetic, &v) {
            (None, None, _) => {}
            (Some(g), Some(c), Some(v)) => {
                let d = dim as usize;
                let magnitude = per(&|_, i| (0..d).map(|a| mass[a] * v[i * d + a].powi(2)).sum());
                // Per particle: dim products and squares and dim - 1 additions.
                let tol = (items + 8.0) * u * magnitude.0 + 16.0 * u * magnitude.0;
                assert!((g - c).abs() <= tol, "kinetic sum {g} vs {c} (bound {tol})");
            }
            other => panic!("kinetic sums disagree in presence: {other:?}"),
        }
    }
}

/// Overdamped Langevin (Euler–Maruyama) in U = Σ k_c x_c² / 2: the chain's stationary
/// variance is T / (k (1 − k dt / 2)), so ⟨|∇U|²⟩ / ⟨ΔU⟩ = Σ_c k_c T / (1 − k_c dt / 2) / Σ k_c
/// (ΔU = Σ k_c is constant); started at exp(−U/T) the chain is that close after t = 8 / k_min
/// (the leftover e^{−2 k t} of a k dt / 2 relative gap is far below the sampling error). The
/// sampling error of Σ_c k_c² x_c² over N particles: sqrt(Σ_c 2 k_c⁴ var_c² / N); 5 sigma.
#[test]
fn langevin_configurational_temperature_is_t_at_equilibrium() {
    let (k, temperature, dt, n) = ([1.0f64, 3.0], 0.7f64, 0.02, 100_000u64);
    let steps = (8.0 / k[0] / dt) as u64;
    let init = Init::Gaussian {
        mean: vec![0.0; 2],
        std: k.iter().map(|kc| (temperature / kc).sqrt()).collect(),
    };
    let p = plan(n, 2, init, langevin(harmonic(&k), temperature, dt, steps));
    let (e, _, _, v) = run(&p, &Layout::default());
    assert!(v.is_none() && e.kinetic.is_none());
    let var: Vec<f64> = k
        .iter()
        .map(|kc| temperature / (kc * (1.0 - kc * dt / 2.0)))
        .collect();
    let trace: f64 = k.iter().sum();
    let expected: f64 = k.iter().zip(&var).map(|(kc, v)| kc * kc * v).sum::<f64>() / trace;
    let sigma = (k
        .iter()
        .zip(&var)
        .map(|(kc, v)| 2.0 * kc.powi(4) * v * v)
        .sum::<f64>()
        / n as f64)
        .sqrt()
        / trace;
    let got = e.configurational_temperature().expect("particles");
    assert!(
        (got - expected).abs() <= 5.0 * sigma,
        "configurational temperature {got}, expected {expected} ± 5 × {sigma}"
    );
    // ⟨U⟩ = Σ k_c var_c / 2, its sampling error sqrt(Σ_c (k_c var_c)² / 2 / N).
    let mean_u: f64 = k.iter().zip(&var).map(|(kc, v)| 0.5 * kc * v).sum();
    let sigma_u = (k
        .iter()
        .zip(&var)
        .map(|(kc, v)| 0.5 * (kc * v).powi(2))
        .sum::<f64>()
        / n as f64)
        .sqrt();
    let got_u = e.mean_potential().expect("particles");
    assert!(
        (got_u - mean_u).abs() <= 5.0 * sigma_u,
        "mean potential {got_u}, expected {mean_u} ± 5 × {sigma_u}"
    );
    // The exact-T limit is distinguishable from the chain's: the bias is accounted for.
    assert!((expected - temperature).abs() > sigma);
}

/// Underdamped Langevin (BAOAB) in U = Σ k_c x_c² / 2 with masses m_c: BAOAB samples the
/// harmonic positions exactly (variance T / k, so the configurational temperature is T),
/// and the stored end-of-step velocity has variance (T / m)(1 − ω² dt² / 4), ω² = k / m, so
/// ⟨Σ_c m_c v_c²⟩ / dim = Σ_c T (1 − ω_c² dt² / 4) / dim. Started at Boltzmann × Maxwell and
/// run to t = 30 (γ = 1); sampling errors as above; 5 sigma.
#[test]
fn underdamped_temperatures_are_t_at_equilibrium() {
    let (k, mass, temperature, gamma, dt, n) =
        ([1.0f64, 4.0], [1.0f64, 2.0], 0.7f64, 1.0, 0.4, 100_000u64);
    let steps = (30.0 / dt) as u64;
    let init = Init::Gaussian {
        mean: vec![0.0; 2],
        std: k.iter().map(|kc| (temperature / kc).sqrt()).collect(),
    };
    let p = plan(
        n,
        2,
        init,
        underdamped(harmonic(&k), temperature, gamma, &mass, dt, steps),
    );
    let (e, _, _, v) = run(&p, &Layout::default());
    assert!(v.is_some());
    let nn = n as f64;
    let trace: f64 = k.iter().sum();
    let sigma_conf = (k
        .iter()
        .map(|kc| 2.0 * (kc * temperature).powi(2))
        .sum::<f64>()
        / nn)
        .sqrt()
        / trace;
    let conf = e.configurational_temperature().expect("particles");
    assert!(
        (conf - temperature).abs() <= 5.0 * sigma_conf,
        "configurational temperature {conf}, expected {temperature} ± 5 × {sigma_conf}"
    );
    let per_axis: Vec<f64> = k
        .iter()
        .zip(&mass)
        .map(|(kc, m)| temperature * (1.0 - kc / m * dt * dt / 4.0))
        .collect();
    let expected = per_axis.iter().sum::<f64>() / 2.0;
    let sigma_kin = (per_axis.iter().map(|t| 2.0 * t * t).sum::<f64>() / nn).sqrt() / 2.0;
    let kin = e.kinetic_temperature().expect("velocities");
    assert!(
        (kin - expected).abs() <= 5.0 * sigma_kin,
        "kinetic temperature {kin}, expected {expected} ± 5 × {sigma_kin}"
    );
    assert!((expected - temperature).abs() > 5.0 * sigma_kin);
}
