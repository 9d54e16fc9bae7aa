//! The statistics the report uses: quantiles of one run's latencies, and the median and
//! spread of a figure over runs.

use std::fmt;

/// The `q` quantile (0..=1) of sorted values, by rank (the smallest value with at least
/// `q` of the values at or below it); 0 for none.
pub fn quantile(sorted: &[u64], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// A figure over several runs: its median and its range.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Spread {
    pub median: f64,
    pub min: f64,
    pub max: f64,
    pub n: usize,
}

impl Spread {
    /// The spread of `values`, ignoring NaN (a figure a run could not produce); `None` when
    /// nothing is left.
    pub fn of(values: impl IntoIterator<Item = f64>) -> Option<Spread> {
        let mut v: Vec<f64> = values.into_iter().filter(|x| !x.is_nan()).collect();
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        let n = v.len();
        // The mean of the two middle values for an even count, so that two runs' median
        // is their midpoint rather than the lower one.
        let median = if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        };
        Some(Spread {
            median,
            min: v[0],
            max: v[n - 1],
            n,
        })
    }

    /// Shown with `decimals` digits: `median (min–max)`, or just the value for one run.
    pub fn show(&self, decimals: usize) -> Shown {
        Shown(*self, decimals)
    }
}

/// A [`Spread`] ready to print.
#[derive(Debug)]
pub struct Shown(Spread, usize);

impl fmt::Display for Shown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (s, d) = (self.0, self.1);
        if s.n <= 1 || s.min == s.max {
            write!(f, "{:.d$}", s.median)
        } else {
            write!(f, "{:.d$} ({:.d$}–{:.d$})", s.median, s.min, s.max)
        }
    }
}

/// `a / b`, or `None` when `b` is not a positive number.
pub fn ratio(a: f64, b: f64) -> Option<f64> {
    (b > 0.0 && a.is_finite()).then(|| a / b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_by_rank() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(quantile(&v, 0.5), 50);
        assert_eq!(quantile(&v, 0.9), 90);
        assert_eq!(quantile(&v, 0.99), 99);
        assert_eq!(quantile(&v, 0.999), 100);
        assert_eq!(quantile(&v, 1.0), 100);
        assert_eq!(quantile(&v, 0.0), 1);
        assert_eq!(quantile(&[], 0.5), 0);
        assert_eq!(quantile(&[7], 0.99), 7);
        let thousand: Vec<u64> = (1..=1000).collect();
        assert_eq!(quantile(&thousand, 0.999), 999);
    }

    #[test]
    fn spread_median_and_range() {
        let s = Spread::of([3.0, 1.0, 2.0]).unwrap();
        assert_eq!((s.median, s.min, s.max, s.n), (2.0, 1.0, 3.0, 3));
        let even = Spread::of([4.0, 1.0, 3.0, 2.0]).unwrap();
        assert_eq!(even.median, 2.5);
        let gaps = Spread::of([f64::NAN, 5.0]).unwrap();
        assert_eq!((gaps.median, gaps.n), (5.0, 1));
        assert!(Spread::of([f64::NAN]).is_none());
        assert!(Spread::of(std::iter::empty()).is_none());
    }

    #[test]
    fn spread_display() {
        assert_eq!(
            Spread::of([1.0, 2.0, 4.0]).unwrap().show(2).to_string(),
            "2.00 (1.00–4.00)"
        );
        assert_eq!(Spread::of([1.5]).unwrap().show(1).to_string(), "1.5");
    }

    #[test]
    fn ratios() {
        assert_eq!(ratio(1.0, 4.0), Some(0.25));
        assert_eq!(ratio(1.0, 0.0), None);
        assert_eq!(ratio(1.0, -2.0), None);
        assert_eq!(ratio(f64::NAN, 2.0), None);
    }
}
