//! The grid Fokker–Planck solver against exact answers: the Ornstein–Uhlenbeck transient in
//! 1D and 2D, the Boltzmann density of the double well, mass, positivity and the free energy.

use fokker::reference::law::{self, Gaussian};
use fokker::reference::solver::{FokkerPlanck, Grid, free_energy};

fn l1(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).sum()
}

/// Solves the OU problem dX = -M (X - c) dt + sqrt(2T) dW from a Gaussian on a grid of `n`
/// cells per axis and returns the worst L1 distance to the exact law over the snapshots,
/// checking mass and positivity at each.
fn ou_error(n: usize, axes: usize, dt: f64) -> f64 {
    let (m, c, t) = if axes == 1 {
        (vec![1.5], vec![0.2], 0.6)
    } else {
        (vec![1.5, 0.4, 0.4, 1.0], vec![0.2, -0.3], 0.6)
    };
    let range = vec![[-4.0, 4.0]; axes];
    let grid = Grid::new(vec![n; axes], range);
    let start = Gaussian {
        mean: if axes == 1 { vec![2.0] } else { vec![2.0, 1.5] },
        cov: if axes == 1 {
            vec![0.09]
        } else {
            vec![0.09, 0.0, 0.0, 0.16]
        },
    };
    let u: Vec<f64> = grid
        .centres()
        .iter()
        .map(|x| {
            let d: Vec<f64> = x.iter().zip(&c).map(|(a, b)| a - b).collect();
            let mut q = 0.0;
            for i in 0..axes {
                for j in 0..axes {
                    q += d[i] * m[i * axes + j] * d[j];
                }
            }
            0.5 * q
        })
        .collect();
    let mass0 = law::gaussian_bins(&grid, &start);
    let total0: f64 = mass0.iter().sum();
    let mut fp = FokkerPlanck::new(grid.clone(), t, u, mass0, dt);
    let mut worst: f64 = 0.0;
    for &time in &[0.1, 0.3, 0.6, 1.0, 2.0] {
        fp.advance_to(time);
        let total: f64 = fp.mass().iter().sum();
        assert!(
            ((total - total0) / total0).abs() < 1e-10,
            "mass {total} vs {total0}"
        );
        assert!(fp.mass().iter().all(|&v| v >= 0.0), "negative density");
        let exact = law::gaussian_bins(&grid, &law::ou_transient(&m, &c, t, &start, time));
        worst = worst.max(l1(fp.mass(), &exact));
    }
    worst
}

#[test]
fn ou_transient_1d_error_shrinks_with_the_grid() {
    let errors: Vec<f64> = [32, 64, 128, 256]
        .iter()
        .map(|&n| ou_error(n, 1, 1e-4))
        .collect();
    println!("1D OU L1 errors: {errors:?}");
    for w in errors.windows(2) {
        assert!(w[1] < 0.6 * w[0], "{errors:?}");
    }
    assert!(errors[3] < 5e-3, "{errors:?}");
}

#[test]
fn ou_transient_2d_error_shrinks_with_the_grid() {
    let errors: Vec<f64> = [24, 48, 96].iter().map(|&n| ou_error(n, 2, 4e-4)).collect();
    println!("2D OU L1 errors: {errors:?}");
    for w in errors.windows(2) {
        assert!(w[1] < 0.6 * w[0], "{errors:?}");
    }
    assert!(errors[2] < 2e-2, "{errors:?}");
}

fn double_well(n: usize) -> (Grid, Vec<f64>) {
    let grid = Grid::new(vec![n, n], vec![[-2.5, 2.5], [-3.0, 3.0]]);
    let u = grid
        .centres()
        .iter()
        .map(|x| (x[0] * x[0] - 1.0).powi(2) + 0.5 * x[1] * x[1])
        .collect();
    (grid, u)
}

#[test]
fn double_well_relaxes_to_boltzmann_with_falling_free_energy() {
    let (grid, u) = double_well(64);
    let temperature = 0.8;
    let mut start = vec![0.0; grid.len()];
    // All mass in the left well.
    start[(64 * 3 / 10) * 64 + 32] = 1.0;
    let mut fp = FokkerPlanck::new(grid.clone(), temperature, u.clone(), start, 1e-2);
    let mut last = fp.free_energy();
    let mut time = 0.0;
    while time < 40.0 {
        time += 0.25;
        fp.advance_to(time);
        let f = fp.free_energy();
        assert!(
            f <= last + 1e-12 * last.abs().max(1.0),
            "F rose: {last} -> {f}"
        );
        last = f;
        assert!(fp.mass().iter().all(|&v| v >= 0.0));
    }
    let total: f64 = fp.mass().iter().sum();
    assert!((total - 1.0).abs() < 1e-10, "{total}");
    let boltzmann = law::boltzmann_masses(&u, temperature);
    let gap = l1(fp.mass(), &boltzmann);
    assert!(gap < 1e-6, "L1 to exp(-U/T)/Z: {gap}");
    let f_eq = free_energy(&boltzmann, &u, temperature, grid.volume());
    assert!(
        last >= f_eq - 1e-9 && last - f_eq < 1e-6,
        "{last} vs {f_eq}"
    );
}

#[test]
fn one_dimensional_double_well_stationary_state_at_low_temperature() {
    let grid = Grid::new(vec![400], vec![[-2.0, 2.0]]);
    let u: Vec<f64> = grid
        .centres()
        .iter()
        .map(|x| (x[0] * x[0] - 1.0).powi(2))
        .collect();
    let t = 0.5;
    let mut start = vec![0.0; 400];
    start[100] = 1.0;
    let mut fp = FokkerPlanck::new(grid, t, u.clone(), start, 0.05);
    fp.advance_to(200.0);
    let gap = l1(fp.mass(), &law::boltzmann_masses(&u, t));
    assert!(gap < 1e-6, "{gap}");
}
