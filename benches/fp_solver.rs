//! The grid Fokker–Planck solver's speed on the yardstick: a 512 x 512 double-well
//! grid to t = 5 (solver dt = fokker::reference::SOLVER_DT), printed as one JSON line.
//!
//!     cargo bench --bench fp_solver -- [--cells 512] [--t-end 5] [--mueller-brown]
//!
//! `--mueller-brown` solves the Müller–Brown surface (scale 0.1) instead, a potential that
//! does not separate the axes (every line has its own factors). `--periodic` makes both axes
//! periodic (every line a cyclic system, solved line by line); `--absorbing` makes both axes'
//! ends absorbing and adds an absorbing region x >= 1.5 (the end and sink bookkeeping).

use fokker::model::Potential;
use fokker::reference::SOLVER_DT;
use fokker::reference::boundary::{AxisBoundary, Region};
use fokker::reference::law;
use fokker::reference::solver::{FokkerPlanck, Grid};
use std::time::Instant;

fn arg(name: &str, default: f64) -> f64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let n = arg("--cells", 512.0) as usize;
    let t_end = arg("--t-end", 5.0);
    let mueller_brown = std::env::args().any(|a| a == "--mueller-brown");
    let (grid, potential) = if mueller_brown {
        (
            Grid::new(vec![n, n], vec![[-1.5, 1.2], [-0.5, 2.0]]),
            Potential::MuellerBrown { scale: 0.1 },
        )
    } else {
        (
            Grid::new(vec![n, n], vec![[-2.5, 2.5], [-2.5, 2.5]]),
            Potential::DoubleWell,
        )
    };
    let u: Vec<f64> = grid.centres().iter().map(|x| potential.value(x)).collect();
    let start = law::gaussian_bins(
        &grid,
        &law::Gaussian {
            mean: if mueller_brown {
                vec![-0.5, 1.5]
            } else {
                vec![-1.0, 0.0]
            },
            cov: vec![0.01, 0.0, 0.0, 0.01],
        },
    );
    let t0 = Instant::now();
    let mut fp = FokkerPlanck::new(grid, 0.6, u, start, SOLVER_DT);
    let boundary = if std::env::args().any(|a| a == "--periodic") {
        Some(AxisBoundary::Periodic)
    } else if std::env::args().any(|a| a == "--absorbing") {
        Some(AxisBoundary::ABSORBING)
    } else {
        None
    };
    if let Some(b) = boundary {
        fp = fp.with_boundaries(vec![b; 2]).expect("two axes");
        if b == AxisBoundary::ABSORBING {
            fp = fp
                .with_absorbing_region(Region::HalfSpace {
                    normal: vec![1.0, 0.0],
                    offset: 1.5,
                })
                .expect("the region holds cells");
        }
    }
    fp.advance_to(t_end);
    let seconds = t0.elapsed().as_secs_f64();
    let steps = fp.steps();
    println!(
        "{{\"potential\":\"{}\",\"boundary\":\"{boundary:?}\",\"cells\":{},\"t_end\":{t_end},\"steps\":{steps},\"seconds\":{seconds:.3},\"cell_steps_per_second\":{:.3e},\"threads\":{}}}",
        if mueller_brown {
            "mueller_brown"
        } else {
            "double_well"
        },
        n * n,
        (n * n) as f64 * steps as f64 / seconds,
        rayon::current_num_threads()
    );
}
