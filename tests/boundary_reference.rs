//! The grid reference follows the run's boundaries (src/reference/mod.rs, `grid_boundaries`):
//! an Ornstein–Uhlenbeck process against a reflecting wall on the noise floor of the grid
//! solution, and the double well's escape rate into an absorbing target measured from the
//! particles' first-passage times against the grid's `escape_rate()`, with the particles'
//! survival against the grid's `survival_reference` per snapshot; the tilted washboard on a
//! periodic axis on the noise floor of the grid. Every tolerance is derived beside its check.

mod common;

use common::chain::chain_law_sde;
use common::stats::{self, EPS32, Z_LIMIT};
use fokker::reference::boundary::{AxisBoundary, Region};
use fokker::reference::law::normal_mass;
use fokker::reference::solver::{FokkerPlanck, Grid};
use std::path::Path;
use std::process::{Command, Output};

/// Broadie–Glasserman–Kou: a walk monitored every dt is absorbed as if continuously by a
/// boundary moved outward by BETA sqrt(2 D dt), BETA = -zeta(1/2) / sqrt(2 pi).
const BETA: f64 = 0.5825971579390106;

fn fokker(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_fokker"))
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("the fokker binary runs")
}

fn ok(o: &Output) {
    assert!(
        o.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

fn manifest(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("manifest.json")).unwrap()).unwrap()
}

/// A metrics.csv column by name.
fn column(dir: &Path, name: &str) -> Vec<f64> {
    let text = std::fs::read_to_string(dir.join("metrics.csv")).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let i = header
        .iter()
        .position(|h| *h == name)
        .unwrap_or_else(|| panic!("metrics.csv lacks {name}: {header:?}"));
    lines
        .map(|l| l.split(',').nth(i).unwrap().parse().unwrap())
        .collect()
}

const OU_WALL: &str = r#"
seed = 21
[particles]
count = 20000
dim = 1
init = { kind = "point", at = [0.5] }
[dynamics]
kind = "langevin"
potential = { kind = "quadratic", matrix = [[1.0]] }
temperature = 1.0
dt = 1e-3
steps = 2000
[boundary]
x = { kind = "reflecting", low = 0.0, high = 6.0 }
[output]
every = 0.5
histogram = { bins = 60, range = [[0.0, 6.0]] }
reference = "fokker_planck"
"#;

/// OU (U = x^2/2, T = 1) from x0 = 0.5 with reflecting walls at 0 and 6, against the grid
/// reference (no-flux walls at the range's ends, the range = the wall interval).
///
/// The particles' law is known exactly: the walk x' = fold(x (1 - dt) + sqrt(2 dt) xi) is,
/// pathwise, |y| for the free Euler–Maruyama chain y' = y (1 - dt) + sqrt(2 dt) xi' from
/// y0 = x0 (xi' = sign(y) xi is again standard normal; folding at 0 is |.|, and at 6 it does
/// nothing while |y| <= 6), until |y| first exceeds 6. y_n is N(m_n, v_n) with
/// m_n = x0 (1 - dt)^n and v_n = 2 dt (1 - (1 - dt)^{2n}) / (1 - (1 - dt)^2) <= 1.001, so the
/// two laws differ in TV by at most P(max_k |y_k| > 6) <= n 2 P(N(0.5, 1.001) > 6) < 1e-4
/// (n = 2000). The folded law's bin masses are normal masses of [a, b] and [-b, -a]. f32
/// positions move a particle by at most EPS32 |x| <= 6 EPS32, which changes its bin only
/// within that of one of the 59 inner edges, where the density is below 0.8: a further
/// 59 * 0.8 * 2 * 6 EPS32 < 7e-5 in TV. delta = TV(folded chain law, grid) plus these is the
/// only bias, so E0 - delta - eps <= tv <= E0 + delta + eps (tests/common/stats.rs). The
/// grid's own distance to the chain law is asserted to stay below eps, so that the allowance
/// cannot swallow a wrong reference (the unfolded N(m, v) restricted to [0, 6], what a
/// solver leaking mass through the wall at 0 would approach, is ~0.3 away at t = 2).
#[test]
fn ou_against_a_reflecting_wall_sits_on_the_noise_floor_of_the_grid() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("s.toml"), OU_WALL).unwrap();
    ok(&fokker(
        &["run", "s.toml", "--out", "run", "--progress", "none"],
        tmp.path(),
    ));
    let run = tmp.path().join("run");
    let (n, dt, x0, bins) = (20_000u64, 1e-3, 0.5, 60usize);
    let time = column(&run, "time");
    let tv = column(&run, "tv");
    let floor = column(&run, "tv_floor");
    assert_eq!(time, vec![0.0, 0.5, 1.0, 1.5, 2.0]);
    assert!(tv[0] < 1e-12, "{tv:?}");
    let snapshots = manifest(&run)["snapshots"].as_array().unwrap().clone();
    let eps = stats::tv_deviation(n);
    let escape = 2000.0 * 2.0 * normal_mass(6.0, f64::INFINITY, 0.5, 1.001f64.sqrt());
    assert!(escape < 1e-4, "{escape}");
    let f32_bias = 59.0 * 0.8 * 2.0 * 6.0 * EPS32;
    for k in 1..time.len() {
        let steps = (time[k] / dt).round() as i32;
        let a = 1.0 - dt;
        let (m, v) = (
            x0 * a.powi(steps),
            2.0 * dt * (1.0 - a.powi(2 * steps)) / (1.0 - a * a),
        );
        let folded: Vec<f64> = (0..bins)
            .map(|b| {
                let (lo, hi) = (b as f64 * 0.1, (b + 1) as f64 * 0.1);
                normal_mass(lo, hi, m, v.sqrt()) + normal_mass(-hi, -lo, m, v.sqrt())
            })
            .collect();
        let rel = snapshots[k]["reference"]["density"].as_str().unwrap();
        let (_, grid) = fokker::output::read_npy_f64(&run.join(rel)).unwrap();
        let own = stats::binned_tv(&folded, &grid);
        assert!(
            own < eps,
            "t = {}: the grid is {own} from the chain law",
            time[k]
        );
        let delta = own + escape + f32_bias;
        println!(
            "t = {}: tv {:.4} floor {:.4} delta {delta:.2e} eps {eps:.2e}",
            time[k], tv[k], floor[k]
        );
        assert!(
            tv[k] <= floor[k] + delta + eps && tv[k] >= floor[k] - delta - eps,
            "t = {}: tv {} outside the noise floor {} +- (delta {delta} + eps {eps})",
            time[k],
            tv[k],
            floor[k]
        );
    }
}

/// The grid cannot follow walls it does not span, nor absorb where the free transient has no
/// absorption: exit 65 naming the keys, nothing written.
#[test]
fn references_the_walls_cannot_follow_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let cases = [
        (
            OU_WALL.replace("[[0.0, 6.0]]", "[[-1.0, 6.0]]"),
            &["boundary.x", "output.histogram.range[0]", "[0, 6]"][..],
        ),
        (
            OU_WALL.replace("\"fokker_planck\"", "\"analytic\""),
            &["output.reference", "\"analytic\"", "[boundary]"][..],
        ),
        (
            format!(
                "{}[[observe.first_passage]]\nname = \"far\"\nregion = {{ x = [4.0, 6.0] }}\n\
                 absorb = true\n",
                OU_WALL.replace("\"fokker_planck\"", "\"boltzmann\"")
            ),
            &["output.reference", "\"boltzmann\"", "absorbing"][..],
        ),
    ];
    for (k, (text, needles)) in cases.iter().enumerate() {
        let name = format!("bad{k}.toml");
        std::fs::write(tmp.path().join(&name), text).unwrap();
        let o = fokker(
            &["run", &name, "--out", "out", "--progress", "none"],
            tmp.path(),
        );
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(65), "{name}: {stderr}");
        for needle in *needles {
            assert!(stderr.contains(needle), "{name}: no {needle} in {stderr}");
        }
        assert!(!tmp.path().join("out").exists(), "{name} wrote out/");
    }
}

/// Double well U = (x^2 - 1)^2 at T = 0.2 (Delta U / T = 5), reflecting walls at -2.5 and
/// 2.5, from the left minimum, absorbed at x >= B beyond the barrier top. The grid reference
/// (2000 cells of h = 0.0025) reports its escape rate k (lowest eigenvalue, the target's
/// cells sinks) and S(t) per snapshot.
///
/// Rate from the particles: after t0 = 2 the survivors' law is the quasi-stationary one up
/// to e^{-(lambda_1 - k) t0} ~ e^{-16} (lambda_1 ~ U''(-1) = 8, the relaxation in the
/// well), so from then on passage times are exponential with rate k and the maximum
/// likelihood estimate k^ = (passages in (t0, t1]) / (time the survivors of t0 spend
/// unabsorbed in (t0, t1]) has relative standard error 1 / sqrt(passages): Z_LIMIT of them.
/// (Passage steps are whole steps, a bias of order k dt = 1e-5 relative.) Biases, each
/// bounded on its own: detection at step ends moves the boundary outward by
/// BETA sqrt(2 T dt) (Broadie–Glasserman–Kou), with a remainder of at most a quarter of that
/// shift (as in tests/boundary_gpu.rs), and the grid's sink boundary is the first cell
/// centre at or past B (up to h further): the rate lies between the grid's rate at B and at
/// B + 1.25 BETA sqrt(2 T dt) + h, both computed; Euler–Maruyama's relative bias on the
/// rate, O(dt max |U''|) = 8 dt (as there); the grid's O(h^2) error, relative
/// h^2 max |U''| / (12 T) < 3e-5.
///
/// S(t) per snapshot: the particles' survival is binomial around their own S, within
/// Z_LIMIT sqrt(S (1 - S) / N); the biases above act on the hazard, moving S(t) by at most
/// S(t) (e^{t dk} - 1), dk their sum.
#[test]
fn double_well_escape_rate_matches_the_grid_eigenvalue() {
    let (n, dt, temp, b) = (65_536u64, 2.5e-3, 0.2, 0.8);
    let steps = 20_000u64;
    let text = format!(
        r#"
seed = 22
[particles]
count = {n}
dim = 1
init = {{ kind = "point", at = [-1.0] }}
[dynamics]
kind = "langevin"
potential = {{ expr = "(x^2 - 1)^2" }}
temperature = {temp}
dt = {dt}
steps = {steps}
[boundary]
x = {{ kind = "reflecting", low = -2.5, high = 2.5 }}
[[observe.first_passage]]
name = "right"
region = {{ x = [{b}, 3.0] }}
absorb = true
[output]
every = 10.0
histogram = {{ bins = 50, range = [[-2.5, 2.5]] }}
reference = "fokker_planck"
"#
    );
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("s.toml"), text).unwrap();
    ok(&fokker(
        &["run", "s.toml", "--out", "run", "--progress", "none"],
        tmp.path(),
    ));
    let run = tmp.path().join("run");
    let m = manifest(&run);
    let k_grid = m["first_passage"]["escape_rate_reference"]
        .as_f64()
        .expect("escape_rate_reference in the first_passage record");
    // The same grid (50 bins refined 40 times) with the target moved out.
    let u = |x: f64| (x * x - 1.0).powi(2);
    let rate_at = |edge: f64| {
        let grid = Grid::new(vec![2000], vec![[-2.5, 2.5]]);
        let cells: Vec<f64> = grid.centres().iter().map(|c| u(c[0])).collect();
        let mass = vec![1.0 / 2000.0; 2000];
        FokkerPlanck::new(grid, temp, cells, mass, 1e-3)
            .with_boundaries(vec![AxisBoundary::Reflecting])
            .unwrap()
            .with_absorbing_region(Region::Box(vec![[edge, 3.0]]))
            .unwrap()
            .escape_rate()
            .unwrap()
    };
    let h = 5.0 / 2000.0;
    assert!((rate_at(b) - k_grid).abs() <= 1e-9 * k_grid, "{k_grid}");
    let shift = BETA * (2.0 * temp * dt).sqrt();
    let k_far = rate_at(b + 1.25 * shift + h);
    // Particles' rate after t0.
    let (_, passage) = fokker::output::read_npy_u32(&run.join("first_passage/right.npy")).unwrap();
    let (t0, t1) = (2.0, steps as f64 * dt);
    let (mut passages, mut exposure) = (0u64, 0.0);
    for &s in &passage {
        let t = if s == u32::MAX {
            f64::INFINITY
        } else {
            s as f64 * dt
        };
        if t <= t0 {
            continue;
        }
        if t <= t1 {
            passages += 1;
        }
        exposure += t.min(t1) - t0;
    }
    let k_hat = passages as f64 / exposure;
    let em = 8.0 * dt * k_grid;
    let grid_h2 = h * h * 8.0 / (12.0 * temp) * k_grid;
    let bias = (k_grid - k_far) + em + grid_h2;
    let tol = Z_LIMIT * k_hat / (passages as f64).sqrt() + bias;
    println!(
        "k^ = {k_hat} over {passages} passages, grid {k_grid} (target moved out {k_far}), \
         tolerance {tol}"
    );
    assert!(
        (k_hat - k_grid).abs() <= tol,
        "k^ = {k_hat} over {passages} passages, grid {k_grid}, tolerance {tol}"
    );
    // Kramers' leading order is 9 % off at this barrier: the check resolves it.
    let kramers = (8.0f64 * 4.0).sqrt() / (2.0 * std::f64::consts::PI) * (-5.0f64).exp();
    assert!((kramers - k_grid).abs() > tol, "{kramers} {k_grid} {tol}");
    // S(t) per snapshot.
    let time = column(&run, "time");
    let particles = column(&run, "survival_right");
    let absorbed = column(&run, "absorbed_fraction");
    let grid = column(&run, "survival_reference");
    assert_eq!(time.len(), 6);
    for k in 0..time.len() {
        assert_eq!(particles[k], 1.0 - absorbed[k]);
        let s = grid[k];
        let tol = Z_LIMIT * (s * (1.0 - s) / n as f64).sqrt() + s * (time[k] * bias).exp_m1();
        assert!(
            (particles[k] - s).abs() <= tol,
            "t = {}: particles' S {} against the grid's {s}, tolerance {tol}",
            time[k],
            particles[k]
        );
    }
    assert!(grid[5] < 0.85, "{grid:?}");
}

/// The tilted washboard U = 1.5 cos x - x on the circle [0, 2 pi) (T = 1) from x0 = pi: the
/// potential is not periodic, so the grid takes the general drift f = 1.5 sin x + 1 with a
/// periodic wrap. The particles' law is the Euler–Maruyama chain's: f is periodic, so the
/// wrapped chain is the unwrapped chain x' = x + dt f(x) + sqrt(2 dt) xi taken mod 2 pi,
/// whose law tests/common/chain.rs computes on [-8 pi, 12 pi] (mass leaving it is `lost`,
/// added to the bias) and we wrap onto the 64 bins. f32 positions (|x| < 2 pi) change a bin
/// only within 2 pi EPS32 of one of its 64 edges, where the density is below 1 (it is below
/// 0.6 here): 64 * 2 * 2 pi EPS32 < 1e-4. As for the OU wall: E0 - delta - eps <= tv <=
/// E0 + delta + eps, delta = TV(wrapped chain law, grid) + these, and the grid's distance to
/// the chain law asserted below eps (the gradient flux, taking U's jump of 2 pi at the wrap
/// face, is 0.05 off by t = 1.5 and fails it).
#[test]
fn tilted_washboard_on_a_circle_sits_on_the_noise_floor_of_the_grid() {
    let (n, dt, bins) = (20_000u64, 2e-3, 64usize);
    let two_pi = 2.0 * std::f64::consts::PI;
    let text = format!(
        r#"
seed = 23
[particles]
count = {n}
dim = 1
init = {{ kind = "point", at = [3.141592653589793] }}
[dynamics]
kind = "langevin"
potential = {{ expr = "v0*cos(x) - f*x", params = {{ v0 = 1.5, f = 1.0 }} }}
temperature = 1.0
dt = {dt}
steps = 1000
[boundary]
x = {{ kind = "periodic", low = 0.0, high = {two_pi} }}
[output]
every = 0.5
histogram = {{ bins = {bins}, range = [[0.0, {two_pi}]] }}
reference = "fokker_planck"
"#
    );
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("s.toml"), text).unwrap();
    ok(&fokker(
        &["run", "s.toml", "--out", "run", "--progress", "none"],
        tmp.path(),
    ));
    let run = tmp.path().join("run");
    let time = column(&run, "time");
    let tv = column(&run, "tv");
    let floor = column(&run, "tv_floor");
    assert_eq!(time, vec![0.0, 0.5, 1.0, 1.5, 2.0]);
    let steps: Vec<u64> = time[1..].iter().map(|t| (t / dt).round() as u64).collect();
    let (lo, hi) = (-4.0 * two_pi, 6.0 * two_pi);
    let h = two_pi / (bins as f64 * 4.0);
    let chain = chain_law_sde(
        &|x| 1.5 * x.sin() + 1.0,
        &|_| 1.0,
        dt,
        std::f64::consts::PI,
        lo,
        hi,
        h,
        &steps,
    );
    let snapshots = manifest(&run)["snapshots"].as_array().unwrap().clone();
    let eps = stats::tv_deviation(n);
    let f32_bias = 64.0 * 2.0 * two_pi * EPS32;
    for k in 1..time.len() {
        let unwrapped = chain.bins(k - 1, 10 * bins, lo, hi);
        let mut wrapped = vec![0.0; bins];
        for (j, m) in unwrapped.iter().enumerate() {
            wrapped[j % bins] += m;
        }
        let rel = snapshots[k]["reference"]["density"].as_str().unwrap();
        let (_, grid) = fokker::output::read_npy_f64(&run.join(rel)).unwrap();
        let own = stats::binned_tv(&wrapped, &grid);
        assert!(
            own < eps,
            "t = {}: the grid is {own} from the chain law",
            time[k]
        );
        let delta = own + chain.lost + f32_bias;
        println!(
            "t = {}: tv {:.4} floor {:.4} delta {delta:.2e} eps {eps:.2e}",
            time[k], tv[k], floor[k]
        );
        assert!(
            tv[k] <= floor[k] + delta + eps && tv[k] >= floor[k] - delta - eps,
            "t = {}: tv {} outside the noise floor {} +- (delta {delta} + eps {eps})",
            time[k],
            tv[k],
            floor[k]
        );
    }
}
