//! `fokker sample`: draws samples of exp(-U/T) from a Langevin scenario and reports how many
//! of them are effectively independent.
//!
//! Every particle of the scenario is an independent chain run for the scenario's `steps`.
//! After `burn_in` steps each chain gives D = ceil(count / chains) draws, `thin` =
//! floor((steps - burn_in) / D) steps apart, the last at the final step. At each draw the
//! positions of all chains are read back (the same bytes samples.npy is made of), and the
//! statistics are computed on the host in f64: the integrated autocorrelation time needs the
//! whole series of each chain (the window is chosen from the series itself), which is not a
//! streaming reduction the GPU observers make.
//!
//! Integrated autocorrelation time: Sokal's automatic windowing (A. D. Sokal, "Monte Carlo
//! methods in statistical mechanics: foundations and new algorithms", 1997, section 3):
//! tau(M) = 1 + 2 sum_{t=1}^{M} rho(t) with the smallest window M >= c tau(M), c = 5. With
//! several chains, rho(t) is the chains' mean autocovariance about the grand mean over the
//! variance about it, so chains that disagree (have not mixed) raise tau. ESS = draws / tau.

use crate::dynamics::References;
use crate::error::{Error, Result, ScenarioIssue};
use crate::gpu::{AdapterChoice, Gpu};
use crate::model::expr::{ExprPotential, PotentialSource};
use crate::output::{npy_f32, write_atomic};
use crate::scenario::parse::Resolved;
use crate::simulation::{Layout, Simulation};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// Sokal's window constant: the window is at least this many autocorrelation times.
pub const SOKAL_C: f64 = 5.0;

/// Files a previous `fokker sample` leaves in its directory.
const REPORT: &str = "ess.json";

pub struct SampleOptions {
    pub out: PathBuf,
    pub count: u64,
    /// Steps before the first draw (default: half the scenario's steps).
    pub burn_in: Option<u64>,
    /// Expressions of x (coordinates x0 .. or x, y, z); empty: every coordinate.
    pub observables: Vec<String>,
    pub force: bool,
    pub adapter: AdapterChoice,
    pub layout: Layout,
}

/// The integrated autocorrelation time of a set of chains.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Iat {
    pub mean: f64,
    /// About the grand mean, over all draws (divided by n - 1).
    pub variance: f64,
    /// In draws.
    pub tau: f64,
    /// Sokal's window M.
    pub window: usize,
    /// False when no window M >= c tau(M) fits in the chains: tau is then a lower bound.
    pub window_found: bool,
}

/// Integrated autocorrelation time of `chains` (equal lengths) with Sokal's automatic window
/// constant `c` (module doc).
pub fn integrated_autocorrelation(chains: &[Vec<f64>], c: f64) -> Iat {
    let d = chains.iter().map(Vec::len).min().unwrap_or(0);
    let n = (chains.len() * d) as f64;
    let mean = chains.iter().flat_map(|ch| &ch[..d]).sum::<f64>() / n;
    let centred: Vec<Vec<f64>> = chains
        .iter()
        .map(|ch| ch[..d].iter().map(|v| v - mean).collect())
        .collect();
    // Autocovariance at lag t, averaged over chains, normalised by the draws per chain.
    let gamma = |t: usize| -> f64 {
        centred
            .iter()
            .map(|ch| {
                ch[..d - t]
                    .iter()
                    .zip(&ch[t..])
                    .map(|(a, b)| a * b)
                    .sum::<f64>()
            })
            .sum::<f64>()
            / n
    };
    let g0 = gamma(0);
    let variance = if n > 1.0 { g0 * n / (n - 1.0) } else { 0.0 };
    if g0 <= 0.0 || d < 2 {
        return Iat {
            mean,
            variance,
            tau: 1.0,
            window: 0,
            window_found: d >= 2,
        };
    }
    let mut tau = 1.0;
    for m in 1..d {
        tau += 2.0 * gamma(m) / g0;
        if m as f64 >= c * tau {
            return Iat {
                mean,
                variance,
                tau,
                window: m,
                window_found: true,
            };
        }
    }
    Iat {
        mean,
        variance,
        tau,
        window: d - 1,
        window_found: false,
    }
}

#[derive(Debug, Serialize)]
struct ObservableReport {
    name: String,
    mean: f64,
    variance: f64,
    /// In draws (multiply by thin_steps for steps).
    tau_int: f64,
    tau_int_steps: f64,
    window: usize,
    window_found: bool,
    ess: f64,
    /// Monte Carlo standard error of the mean, sqrt(variance / ess).
    mcse: f64,
}

#[derive(Debug, Serialize)]
struct Report {
    count: u64,
    chains: u64,
    draws_per_chain: u64,
    burn_in_steps: u64,
    thin_steps: u64,
    seed: u64,
    method: &'static str,
    computed_on: &'static str,
    observables: Vec<ObservableReport>,
}

fn refuse(key: &str, value: String, allowed: String) -> Error {
    Error::Scenario {
        source_name: "command line".into(),
        issues: vec![ScenarioIssue {
            key: key.into(),
            value,
            allowed,
        }],
    }
}

/// Out is created if absent; an existing directory must be empty, or hold a previous
/// `fokker sample` report and `force` be given (its files are then overwritten).
fn prepare_out(out: &Path, force: bool) -> Result<()> {
    if out.exists() {
        if !out.is_dir() {
            return Err(Error::Output(format!(
                "{} exists and is not a directory; pick another --out",
                out.display()
            )));
        }
        let empty = std::fs::read_dir(out)
            .map_err(|e| Error::io(out, e))?
            .next()
            .is_none();
        let previous = force && out.join(REPORT).exists();
        if !(empty || previous) {
            return Err(Error::Output(format!(
                "{} is not empty; pass --force to overwrite a previous `fokker sample` output \
                 in it, or pick another --out",
                out.display()
            )));
        }
    }
    std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))
}

/// Runs the chains, writes OUT/samples.npy, OUT/ess.json and OUT/summary.txt, and returns the
/// summary.
pub fn sample(resolved: &Resolved, opts: &SampleOptions) -> Result<String> {
    let plan = &resolved.plan;
    if !matches!(plan.dynamics.references(), References::Langevin { .. }) {
        return Err(refuse(
            "dynamics.kind",
            format!("\"{}\"", plan.dynamics.kind_name()),
            "\"langevin\": `fokker sample` runs Langevin chains toward exp(-U/T)".into(),
        ));
    }
    let dim = plan.particles.dim as usize;
    let names: Vec<String> = if opts.observables.is_empty() {
        (0..dim).map(|k| format!("x{k}")).collect()
    } else {
        opts.observables.clone()
    };
    let observables = names
        .iter()
        .map(|expr| {
            ExprPotential::new(PotentialSource {
                expr: expr.clone(),
                params: Default::default(),
                dim,
            })
            .map_err(|e| Error::Usage(format!("--observables \"{expr}\": {}", e.error)))
        })
        .collect::<Result<Vec<_>>>()?;
    if opts.count == 0 {
        return Err(Error::Usage("--count must be at least 1".into()));
    }
    let steps = plan.dynamics.steps();
    let burn_in = opts.burn_in.unwrap_or(steps / 2);
    if burn_in >= steps {
        return Err(Error::Usage(format!(
            "--burn-in {burn_in} leaves no steps to sample: the scenario runs {steps} steps"
        )));
    }
    let chains = plan.particles.count;
    let draws = opts.count.div_ceil(chains);
    let thin = (steps - burn_in) / draws;
    if thin == 0 {
        return Err(Error::Usage(format!(
            "--count {} from {chains} chains needs {draws} draws per chain, but only {} steps \
             follow the burn-in ({burn_in} of {steps}): raise dynamics.steps or \
             particles.count, or lower --count or --burn-in",
            opts.count,
            steps - burn_in
        )));
    }
    prepare_out(&opts.out, opts.force)?;
    let gpu = Gpu::open(&opts.adapter)?;
    let mut sim = Simulation::new(
        &gpu,
        plan,
        resolved.samples.as_ref(),
        resolved.data.as_ref(),
        0,
        chains,
        &opts.layout,
    )?;
    // values[o][c][j]: observable o of chain c at draw j.
    let c = chains as usize;
    let mut values = vec![vec![Vec::with_capacity(draws as usize); c]; observables.len()];
    let mut rows: Vec<f32> = Vec::with_capacity(opts.count as usize * dim);
    for j in 0..draws {
        let at = steps - (draws - 1 - j) * thin;
        sim.advance_to(at, |_| Ok(()), &|| false)?;
        let pos = sim.positions()?;
        let t = plan.dynamics.time_at(at);
        for (ch, row) in pos.chunks_exact(dim).enumerate() {
            let x: Vec<f64> = row.iter().map(|&v| f64::from(v)).collect();
            for (o, obs) in observables.iter().enumerate() {
                values[o][ch].push(obs.value_at(&x, t));
            }
        }
        let wanted = (opts.count as usize * dim).saturating_sub(rows.len());
        rows.extend_from_slice(&pos[..wanted.min(pos.len())]);
    }
    let total = (chains * draws) as f64;
    let reports: Vec<ObservableReport> = names
        .iter()
        .zip(&values)
        .map(|(name, series)| {
            let iat = integrated_autocorrelation(series, SOKAL_C);
            let ess = total / iat.tau;
            ObservableReport {
                name: name.clone(),
                mean: iat.mean,
                variance: iat.variance,
                tau_int: iat.tau,
                tau_int_steps: iat.tau * thin as f64,
                window: iat.window,
                window_found: iat.window_found,
                ess,
                mcse: (iat.variance / ess).sqrt(),
            }
        })
        .collect();
    let report = Report {
        count: opts.count,
        chains,
        draws_per_chain: draws,
        burn_in_steps: burn_in,
        thin_steps: thin,
        seed: plan.seed,
        method: "integrated autocorrelation time by Sokal's automatic windowing (c = 5), \
                 chains pooled about the grand mean; ESS = chains * draws / tau_int",
        computed_on: "host, in f64, from every chain's positions read back at each draw",
        observables: reports,
    };
    let npy = npy_f32(&[opts.count as usize, dim], &rows)?;
    write_atomic(&opts.out.join("samples.npy"), &npy)?;
    let json =
        serde_json::to_vec_pretty(&report).map_err(|e| Error::Output(format!("ess.json: {e}")))?;
    write_atomic(&opts.out.join(REPORT), &json)?;
    let summary = summary(&report);
    write_atomic(&opts.out.join("summary.txt"), summary.as_bytes())?;
    Ok(summary)
}

fn summary(r: &Report) -> String {
    let mut s = format!(
        "{} samples from {} chains x {} draws (burn-in {} steps, thin {} steps); \
         statistics over all {} draws\n",
        r.count,
        r.chains,
        r.draws_per_chain,
        r.burn_in_steps,
        r.thin_steps,
        r.chains * r.draws_per_chain
    );
    s.push_str(&format!(
        "{:<16} {:>12} {:>12} {:>10} {:>12} {:>12}\n",
        "observable", "mean", "variance", "tau_int", "ESS", "MCSE"
    ));
    for o in &r.observables {
        s.push_str(&format!(
            "{:<16} {:>12.5} {:>12.5} {:>10.3}{} {:>12.1} {:>12.3e}\n",
            o.name,
            o.mean,
            o.variance,
            o.tau_int,
            if o.window_found { " " } else { "*" },
            o.ess,
            o.mcse
        ));
    }
    if r.observables.iter().any(|o| !o.window_found) {
        s.push_str(
            "* no window M >= 5 tau fits in the chains: tau_int is a lower bound; run longer\n",
        );
    }
    s.push_str("tau_int in draws; multiply by the thin for steps (ess.json has both)\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::{NoiseStream, key_from_seed};

    /// AR(1) chains y_{i+1} = rho y_i + sqrt(1 - rho^2) xi from the stationary law.
    fn ar1(rho: f64, chains: usize, len: usize) -> Vec<Vec<f64>> {
        let key = key_from_seed(11);
        (0..chains)
            .map(|c| {
                let mut noise = NoiseStream::new(key, c as u64, 0, 1);
                let mut y = noise.next_normal();
                (0..len)
                    .map(|_| {
                        let v = y;
                        y = rho * y + (1.0 - rho * rho).sqrt() * noise.next_normal();
                        v
                    })
                    .collect()
            })
            .collect()
    }

    /// AR(1) has rho(t) = rho^t, so tau_int = (1 + rho) / (1 - rho). Sokal's estimate has
    /// standard deviation tau sqrt(2 (2M + 1) / N) (N draws, M the window), and the window
    /// cuts off 2 rho^(M+1) / (1 - rho), below 1e-3 here; the test allows 4 standard
    /// deviations plus that.
    #[test]
    fn ar1_autocorrelation_time() {
        for (rho, chains, len) in [(0.0, 4, 50_000), (0.5, 8, 25_000), (0.9, 20, 20_000)] {
            let series = ar1(rho, chains, len);
            let iat = integrated_autocorrelation(&series, SOKAL_C);
            let want = (1.0 + rho) / (1.0 - rho);
            let n = (chains * len) as f64;
            let sd = want * (2.0 * (2.0 * iat.window as f64 + 1.0) / n).sqrt();
            let cut = 2.0 * rho.powi(iat.window as i32 + 1) / (1.0 - rho);
            assert!(iat.window_found);
            assert!(
                (iat.tau - want).abs() < 4.0 * sd + cut,
                "rho {rho}: tau {} vs {want} (sd {sd}, window {})",
                iat.tau,
                iat.window
            );
            // Unit variance, mean 0: the mean's standard error is sqrt(tau / n).
            assert!(iat.mean.abs() < 5.0 * (want / n).sqrt(), "{}", iat.mean);
            assert!((iat.variance - 1.0).abs() < 5.0 * (2.0 * want / n).sqrt() + 1e-3);
        }
    }

    /// Chains stuck at different levels have not mixed: pooling about the grand mean makes
    /// tau grow to the chains' length rather than report them as independent.
    #[test]
    fn unmixed_chains_have_no_window() {
        let mut series = ar1(0.0, 2, 1000);
        for v in &mut series[1] {
            *v += 10.0;
        }
        let iat = integrated_autocorrelation(&series, SOKAL_C);
        assert!(!iat.window_found || iat.tau > 100.0, "{iat:?}");
    }
}
