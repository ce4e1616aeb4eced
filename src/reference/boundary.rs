//! Boundaries of the grid Fokker–Planck solver (`solver.rs`): what happens at the two ends of
//! each axis of the grid's range, and absorbing regions inside it.
//!
//! Per axis ([`AxisBoundary`]):
//!
//! - `Free` (the default): the range is a box far enough out that the density never reaches
//!   its ends; they carry no flux, so numerically this is `Reflecting` with another meaning.
//! - `Reflecting`: no-flux walls at the range's ends (the range *is* the wall interval).
//! - `Periodic`: the range is one period; the face between the last cell and the first is an
//!   ordinary face, the drift and diffusion sampled at the range's end (= its start). Under a
//!   gradient drift the potential must be periodic on the range: the wrap face takes
//!   U(first cell) − U(last cell) (a tilted potential U = V(x) − F x belongs in a general
//!   drift f = −V' + F).
//! - `Absorbing { low, high }`: zero density (Dirichlet) on the flagged ends, the others
//!   no-flux walls. The mass crossing the end leaves the grid and is counted as absorbed
//!   there. The flux through the half cell between the last centre and the end is the same
//!   exponentially fitted flux with q = D rho = 0 at the end: rate 2 B(∓P') D / h², with
//!   P' = (h / 2) f / D at the end (a gradient drift takes U at the end by linear
//!   extrapolation from the two outermost centres, (3 U_0 − U_1) / 2, second order in h).
//!
//! Absorbing regions ([`Region`]): the cells whose *centre* lies in the region are sinks. A
//! sink holds density 0: the flux into it is the ordinary face flux with q = 0 at its centre,
//! nothing flows out of it, and what flows in is removed and added to the region's absorbed
//! mass at the end of every step. The discrete absorbing boundary is therefore at the centres
//! of the region's outermost cells, within one cell width h of the region's own boundary:
//! place a region's boundary on cell centres where O(h²) accuracy matters.

/// What the solver does at the two ends of one axis of its range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AxisBoundary {
    /// No flux at the range's ends, which stand far out (today's box).
    #[default]
    Free,
    /// No-flux walls at the range's ends.
    Reflecting,
    /// The range is one period.
    Periodic,
    /// Zero density at each flagged end (the other a no-flux wall).
    Absorbing { low: bool, high: bool },
}

impl AxisBoundary {
    /// Absorbing at both ends.
    pub const ABSORBING: AxisBoundary = AxisBoundary::Absorbing {
        low: true,
        high: true,
    };

    /// Whether the end (0 low, 1 high) absorbs.
    pub fn absorbs(&self, end: usize) -> bool {
        match self {
            AxisBoundary::Absorbing { low, high } => [*low, *high][end],
            _ => false,
        }
    }
}

/// A predicate on a point of the grid's axes.
pub type RegionFn = Box<dyn Fn(&[f64]) -> bool + Send + Sync>;

/// A set of points of the grid's axes: an absorbing region is the set of cells whose centre
/// it contains.
pub enum Region {
    /// Per axis a closed interval `[low, high]` (infinite bounds allowed), one per grid axis.
    Box(Vec<[f64; 2]>),
    /// The points x with `normal · x >= offset` (`normal` has one entry per grid axis).
    HalfSpace { normal: Vec<f64>, offset: f64 },
    /// Any set, as a predicate on a point of the grid's axes.
    Predicate(RegionFn),
}

impl std::fmt::Debug for Region {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Region::Box(b) => f.debug_tuple("Box").field(b).finish(),
            Region::HalfSpace { normal, offset } => f
                .debug_struct("HalfSpace")
                .field("normal", normal)
                .field("offset", offset)
                .finish(),
            Region::Predicate(_) => f.write_str("Predicate(..)"),
        }
    }
}

impl Region {
    /// A [`Region::Predicate`] from a closure.
    pub fn predicate(f: impl Fn(&[f64]) -> bool + Send + Sync + 'static) -> Region {
        Region::Predicate(Box::new(f))
    }

    /// The number of axes the region is written for (None: a predicate, any).
    pub fn axes(&self) -> Option<usize> {
        match self {
            Region::Box(b) => Some(b.len()),
            Region::HalfSpace { normal, .. } => Some(normal.len()),
            Region::Predicate(_) => None,
        }
    }

    pub fn contains(&self, x: &[f64]) -> bool {
        match self {
            Region::Box(b) => b.iter().zip(x).all(|(r, v)| r[0] <= *v && *v <= r[1]),
            Region::HalfSpace { normal, offset } => {
                normal.iter().zip(x).map(|(n, v)| n * v).sum::<f64>() >= *offset
            }
            Region::Predicate(p) => p(x),
        }
    }
}
