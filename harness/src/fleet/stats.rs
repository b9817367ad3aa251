//! Summaries of repeated measurements: median, nearest-rank 95th percentile, extremes, mean.

use serde::Serialize;

/// A summary of `n` samples.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Summary {
    pub n: usize,
    pub median: f64,
    /// Nearest-rank 95th percentile: with fewer than 20 samples, the largest.
    pub p95: f64,
    pub min: f64,
    pub max: f64,
    pub mean: f64,
}

/// Summarizes `samples`; `None` when there are none (or any is not a number).
pub fn summarize(samples: &[f64]) -> Option<Summary> {
    if samples.is_empty() || samples.iter().any(|s| s.is_nan()) {
        return None;
    }
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    let median = if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    };
    Some(Summary {
        n,
        median,
        p95: percentile(&sorted, 0.95),
        min: sorted[0],
        max: sorted[n - 1],
        mean: sorted.iter().sum::<f64>() / n as f64,
    })
}

/// Nearest-rank percentile of sorted, non-empty samples.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_and_percentile() {
        let s = summarize(&[5.0, 1.0, 3.0]).expect("three samples");
        assert_eq!(
            (s.n, s.median, s.p95, s.min, s.max, s.mean),
            (3, 3.0, 5.0, 1.0, 5.0, 3.0)
        );
        let s = summarize(&[4.0, 1.0, 3.0, 2.0]).expect("four samples");
        assert_eq!(s.median, 2.5);
        let hundred: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(summarize(&hundred).map(|s| s.p95), Some(95.0));
        assert_eq!(summarize(&[]), None);
        assert_eq!(summarize(&[1.0, f64::NAN]), None);
    }
}
