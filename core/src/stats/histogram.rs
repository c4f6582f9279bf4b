//! A fixed-memory, log-linear latency histogram over microseconds.
//!
//! The layout follows HdrHistogram: values below 32 µs each get their own bucket, and every
//! power of two above that is split into 16 equal buckets. A bucket `[low, high]` therefore
//! never spans more than 1/16 of its lower bound, and a value read back from it (see
//! [`Histogram::quantile`]) is within 1/33 (about 3.03%) of every value the bucket holds.
//! 27 such octaves reach 2^32 µs (about 71.6 minutes); longer durations are counted in the last
//! bucket. Everything lives in one fixed array, so recording never allocates and a histogram
//! costs 3,736 bytes.

use std::fmt;
use std::time::Duration;

use super::Percentiles;

/// Buckets per power of two, as a power of two: 2^4 = 16 buckets, so a bucket spans at most
/// 1/16 of its lower bound.
const SUB_BITS: u32 = 4;

/// Values below this (32 µs) are counted exactly, one bucket each: the first octave that needs
/// to be split into 16 buckets of width 2 starts here.
const LINEAR_LIMIT: u64 = 2 << SUB_BITS;

/// The largest value with a bucket of its own: 2^32 - 1 µs, about 71.6 minutes. Anything larger
/// is counted in the last bucket (its exact size still shows in [`Histogram::max`]).
pub const MAX_TRACKED_US: u64 = (1 << 32) - 1;

/// 32 exact buckets for 0..32 µs, then 16 buckets for each of the 27 octaves from 2^5 to 2^31.
const BUCKETS: usize = LINEAR_LIMIT as usize + (32 - SUB_BITS as usize - 1) * (1 << SUB_BITS);

/// Counts of durations, in microseconds, in fixed memory.
///
/// Durations are truncated to whole microseconds. Quantiles are within 1/33 (about 3.03%) of
/// the exact nearest-rank quantile for values up to [`MAX_TRACKED_US`]; [`min`](Self::min),
/// [`max`](Self::max) and [`count`](Self::count) are exact.
#[derive(Clone, PartialEq, Eq)]
pub struct Histogram {
    counts: [u64; BUCKETS],
    count: u64,
    /// `u64::MAX` while empty, so the first value always replaces it.
    min_us: u64,
    max_us: u64,
}

impl Histogram {
    /// An empty histogram: 3.7 KiB of zeros, on the stack or inside its owner, never on the heap.
    pub fn new() -> Self {
        Self {
            counts: [0; BUCKETS],
            count: 0,
            min_us: u64::MAX,
            max_us: 0,
        }
    }

    /// Counts one duration, truncated to whole microseconds.
    ///
    /// O(1) with no loop and no floating point: it is called for every job, at millions per
    /// second.
    #[inline]
    pub fn record(&mut self, d: Duration) {
        // `as_micros` would go through u128; whole seconds times 10^6 saturate instead, which is
        // the same for any duration shorter than 584,000 years.
        let us = d
            .as_secs()
            .saturating_mul(1_000_000)
            .saturating_add(u64::from(d.subsec_micros()));
        self.record_us(us);
    }

    /// Counts one value given in microseconds. Same cost as [`record`](Self::record).
    #[inline]
    pub fn record_us(&mut self, us: u64) {
        if let Some(slot) = self.counts.get_mut(bucket_of(us)) {
            *slot = slot.saturating_add(1);
        }
        self.count = self.count.saturating_add(1);
        self.min_us = self.min_us.min(us);
        self.max_us = self.max_us.max(us);
    }

    /// How many durations were recorded.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The smallest duration recorded, exactly (to the microsecond); zero when empty.
    pub fn min(&self) -> Duration {
        Duration::from_micros(self.min_us())
    }

    /// The largest duration recorded, exactly (to the microsecond), even beyond
    /// [`MAX_TRACKED_US`]; zero when empty.
    pub fn max(&self) -> Duration {
        Duration::from_micros(self.max_us)
    }

    /// The duration below or at which a fraction `q` of the recorded durations lie
    /// (nearest rank: the `ceil(q * count)`-th smallest), within 1/33 of the exact value.
    ///
    /// `q` is clamped to `0..=1` (NaN counts as 0); `q = 0` gives [`min`](Self::min) and
    /// `q = 1` gives [`max`](Self::max) exactly. Zero when empty.
    pub fn quantile(&self, q: f64) -> Duration {
        Duration::from_micros(self.quantile_us(q))
    }

    /// The shape published in stats: count, median, p90, p99 and max, in microseconds.
    pub fn percentiles(&self) -> Percentiles {
        Percentiles {
            count: self.count,
            p50_us: self.quantile_us(0.5),
            p90_us: self.quantile_us(0.9),
            p99_us: self.quantile_us(0.99),
            max_us: self.max_us,
        }
    }

    /// Adds every value of `other` to this histogram, as if each had been recorded here.
    pub fn merge(&mut self, other: &Histogram) {
        for (mine, theirs) in self.counts.iter_mut().zip(other.counts.iter()) {
            *mine = mine.saturating_add(*theirs);
        }
        self.count = self.count.saturating_add(other.count);
        self.min_us = self.min_us.min(other.min_us);
        self.max_us = self.max_us.max(other.max_us);
    }

    /// Forgets every value, keeping the memory.
    pub fn clear(&mut self) {
        *self = Self::new();
    }

    fn min_us(&self) -> u64 {
        if self.count == 0 {
            0
        } else {
            self.min_us
        }
    }

    fn quantile_us(&self, q: f64) -> u64 {
        if self.count == 0 {
            return 0;
        }
        // NaN reads as 0, like the docs say.
        if q <= 0.0 || q.is_nan() {
            return self.min_us;
        }
        if q >= 1.0 {
            return self.max_us;
        }
        // Nearest rank, 1-based. The float-to-int cast saturates, and the clamp keeps the rank
        // inside the data whatever rounding did.
        let rank = ((q * self.count as f64).ceil() as u64).clamp(1, self.count);
        let mut seen = 0u64;
        for (index, &n) in self.counts.iter().enumerate() {
            seen = seen.saturating_add(n);
            if seen >= rank {
                // The exact min and max are better guesses than a bucket's middle whenever the
                // middle falls outside them, and never worse.
                return representative(index).clamp(self.min_us, self.max_us);
            }
        }
        // Unreachable while the bucket counts add up to `count`; they only fail to if a bucket
        // saturated, and then the largest value is the honest answer.
        self.max_us
    }
}

impl Default for Histogram {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Histogram {
    /// A summary: 464 bucket counts would drown any log line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Histogram")
            .field("count", &self.count)
            .field("min_us", &self.min_us())
            .field("p50_us", &self.quantile_us(0.5))
            .field("p99_us", &self.quantile_us(0.99))
            .field("max_us", &self.max_us)
            .finish()
    }
}

/// The bucket of a value in microseconds, always below `BUCKETS`.
///
/// With `shift` the number of low bits the bucket ignores, the bucket is
/// `shift * 16 + (us >> shift)`, where `us >> shift` keeps the leading one and the next 4 bits
/// (16..32). Or-ing in `LINEAR_LIMIT - 1` makes `shift` 0 below 32, where the bucket is the value
/// itself, so there is no branch.
#[inline]
fn bucket_of(us: u64) -> usize {
    let us = us.min(MAX_TRACKED_US);
    let top_bit = 63 - (us | (LINEAR_LIMIT - 1)).leading_zeros();
    let shift = top_bit - SUB_BITS;
    ((shift << SUB_BITS) as usize) + (us >> shift) as usize
}

/// Lowest value and width of a bucket: the inverse of [`bucket_of`].
fn bucket_bounds(index: usize) -> (u64, u64) {
    let sub_count = 1usize << SUB_BITS;
    if index < sub_count {
        return (index as u64, 1);
    }
    // Indices from 16 on are `shift * 16 + sub` with `sub` in 16..32 (see `bucket_of`).
    let shift = (index / sub_count - 1) as u32;
    let sub = (index % sub_count + sub_count) as u64;
    (sub << shift, 1 << shift)
}

/// The value reported for a bucket: the point whose worst relative error against any integer
/// in `[low, high]` is smallest, `2 * low * high / (low + high)`, rounded to the nearest integer.
/// It errs by at most `(high - low) / (high + low)`, below 1/33 since a width is at most 1/16
/// of its low end.
fn representative(index: usize) -> u64 {
    let (low, width) = bucket_bounds(index);
    if width == 1 {
        return low;
    }
    let (low, high) = (u128::from(low), u128::from(low + width - 1));
    let sum = low + high;
    let value = (2 * low * high + sum / 2) / sum;
    // At most `high`, which fits in u64.
    u64::try_from(value).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The bound stated in the docs.
    const MAX_REL_ERROR: f64 = 1.0 / 33.0;

    /// Knuth's MMIX LCG: deterministic data without a rand crate.
    struct Lcg(u64);

    impl Lcg {
        fn next(&mut self) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            self.0 >> 11
        }

        /// Uniform in [0, 1).
        fn unit(&mut self) -> f64 {
            self.next() as f64 / (1u64 << 53) as f64
        }
    }

    fn exact_quantile(sorted: &[u64], q: f64) -> u64 {
        if q <= 0.0 {
            return sorted[0];
        }
        let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
        sorted[rank - 1]
    }

    fn rel_error(got: u64, want: u64) -> f64 {
        if want == 0 {
            return if got == 0 { 0.0 } else { f64::INFINITY };
        }
        (got as f64 - want as f64).abs() / want as f64
    }

    fn check_quantiles(values: &[u64]) {
        let mut h = Histogram::new();
        for &v in values {
            h.record_us(v);
        }
        let mut sorted = values.to_vec();
        sorted.sort_unstable();
        for q in [
            0.0, 0.001, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999, 0.9999, 1.0,
        ] {
            let want = exact_quantile(&sorted, q);
            let got = h.quantile(q).as_micros() as u64;
            let err = rel_error(got, want);
            assert!(
                err <= MAX_REL_ERROR,
                "q={q}: got {got}, want {want}, error {err}"
            );
        }
    }

    #[test]
    fn size_within_four_kib() {
        assert_eq!(BUCKETS, 464);
        assert!(std::mem::size_of::<Histogram>() <= 4096);
        assert_eq!(std::mem::size_of::<Histogram>(), 3736);
    }

    #[test]
    fn buckets_are_contiguous_and_cover_the_range() {
        // Each bucket starts right after the previous one ends, and bucket_of maps both ends
        // of every bucket back to it.
        let mut next_low = 0u64;
        for index in 0..BUCKETS {
            let (low, width) = bucket_bounds(index);
            assert_eq!(low, next_low, "bucket {index}");
            assert_eq!(bucket_of(low), index);
            assert_eq!(bucket_of(low + width - 1), index);
            next_low = low + width;
        }
        assert_eq!(next_low, MAX_TRACKED_US + 1);
        assert_eq!(bucket_of(u64::MAX), BUCKETS - 1);
    }

    #[test]
    fn representative_error_is_within_bound_for_every_bucket() {
        // The error is largest at a bucket's ends, so checking both ends checks every value.
        let mut worst = 0.0f64;
        for index in 0..BUCKETS {
            let (low, width) = bucket_bounds(index);
            let rep = representative(index);
            for v in [low, low + width - 1] {
                worst = worst.max(rel_error(rep, v));
            }
        }
        assert!(worst <= MAX_REL_ERROR, "worst {worst}");
    }

    #[test]
    fn empty_histogram_reads_zero() {
        let h = Histogram::new();
        assert!(h.is_empty());
        assert_eq!(h.count(), 0);
        for q in [0.0, 0.5, 1.0] {
            assert_eq!(h.quantile(q), Duration::ZERO);
        }
        assert_eq!(h.min(), Duration::ZERO);
        assert_eq!(h.max(), Duration::ZERO);
        assert_eq!(h.percentiles(), Percentiles::default());
    }

    #[test]
    fn small_values_are_exact() {
        let mut h = Histogram::new();
        for us in 0..32 {
            h.record(Duration::from_micros(us));
        }
        for us in 0..32u64 {
            let q = (us + 1) as f64 / 32.0;
            assert_eq!(h.quantile(q), Duration::from_micros(us));
        }
    }

    #[test]
    fn sub_microsecond_parts_are_truncated() {
        let mut h = Histogram::new();
        h.record(Duration::from_nanos(1_999));
        assert_eq!(h.max(), Duration::from_micros(1));
    }

    #[test]
    fn odd_quantile_arguments_are_clamped() {
        let mut h = Histogram::new();
        h.record_us(10);
        h.record_us(1000);
        assert_eq!(h.quantile(f64::NAN), Duration::from_micros(10));
        assert_eq!(h.quantile(-1.0), Duration::from_micros(10));
        assert_eq!(h.quantile(7.0), Duration::from_micros(1000));
        assert_eq!(h.quantile(f64::INFINITY), Duration::from_micros(1000));
    }

    #[test]
    fn huge_values_clamp_into_the_last_bucket() {
        let mut h = Histogram::new();
        h.record(Duration::MAX);
        h.record(Duration::from_secs(10 * 3600));
        h.record(Duration::from_micros(MAX_TRACKED_US));
        assert_eq!(h.count(), 3);
        assert_eq!(h.counts[BUCKETS - 1], 3);
        // max stays exact (saturated to u64 microseconds), the quantiles stay in range.
        assert_eq!(h.max(), Duration::from_micros(u64::MAX));
        assert_eq!(h.min(), Duration::from_micros(MAX_TRACKED_US));
        let p50 = h.quantile(0.5);
        assert!(p50 >= h.min() && p50 <= h.max());
    }

    #[test]
    fn uniform_quantiles() {
        let mut lcg = Lcg(1);
        let values: Vec<u64> = (0..100_000).map(|_| lcg.next() % 10_000_000).collect();
        check_quantiles(&values);
    }

    #[test]
    fn exponential_quantiles() {
        // Mean 2 ms, with a long tail: -ln(U) * mean.
        let mut lcg = Lcg(2);
        let values: Vec<u64> = (0..100_000)
            .map(|_| (-(1.0 - lcg.unit()).ln() * 2_000.0) as u64)
            .collect();
        check_quantiles(&values);
    }

    #[test]
    fn bimodal_quantiles() {
        // 90% fast hits around 150 µs, 10% slow misses around 80 ms.
        let mut lcg = Lcg(3);
        let values: Vec<u64> = (0..100_000)
            .map(|_| {
                if lcg.next().is_multiple_of(10) {
                    70_000 + lcg.next() % 20_000
                } else {
                    100 + lcg.next() % 100
                }
            })
            .collect();
        check_quantiles(&values);
    }

    #[test]
    fn whole_range_quantiles() {
        // Log-uniform from 1 µs to an hour: every octave gets used.
        let mut lcg = Lcg(4);
        let values: Vec<u64> = (0..100_000)
            .map(|_| (3_600e6f64.powf(lcg.unit())) as u64)
            .collect();
        check_quantiles(&values);
    }

    #[test]
    fn merge_equals_recording_both() {
        let mut lcg = Lcg(5);
        let (mut a, mut b, mut both) = (Histogram::new(), Histogram::new(), Histogram::new());
        for i in 0..10_000 {
            let v = lcg.next() % 50_000_000;
            if i % 3 == 0 {
                a.record_us(v);
            } else {
                b.record_us(v);
            }
            both.record_us(v);
        }
        a.merge(&b);
        assert_eq!(a, both);
        // Merging an empty histogram changes nothing, and merging into one copies.
        let before = a.clone();
        a.merge(&Histogram::new());
        assert_eq!(a, before);
        let mut empty = Histogram::new();
        empty.merge(&before);
        assert_eq!(empty, before);
    }

    #[test]
    fn clear_empties() {
        let mut h = Histogram::new();
        h.record_us(5);
        h.clear();
        assert_eq!(h, Histogram::new());
    }

    #[test]
    fn percentiles_read_the_quantiles() {
        let mut h = Histogram::new();
        for us in 1..=100 {
            h.record_us(us);
        }
        let p = h.percentiles();
        assert_eq!(p.count, 100);
        assert_eq!(p.max_us, 100);
        assert!(rel_error(p.p50_us, 50) <= MAX_REL_ERROR);
        assert!(rel_error(p.p90_us, 90) <= MAX_REL_ERROR);
        assert!(rel_error(p.p99_us, 99) <= MAX_REL_ERROR);
    }

    proptest! {
        #[test]
        fn any_values_any_quantile(
            values in proptest::collection::vec(0u64..=MAX_TRACKED_US, 1..300),
            q in 0.0f64..=1.0,
        ) {
            let mut h = Histogram::new();
            for &v in &values {
                h.record_us(v);
            }
            let mut sorted = values.clone();
            sorted.sort_unstable();
            let want = exact_quantile(&sorted, q);
            let got = h.quantile(q).as_micros() as u64;
            prop_assert!(rel_error(got, want) <= MAX_REL_ERROR, "got {} want {}", got, want);
            prop_assert_eq!(h.min().as_micros() as u64, sorted[0]);
            prop_assert_eq!(h.max().as_micros() as u64, sorted[sorted.len() - 1]);
        }

        #[test]
        fn merge_is_recording(
            a in proptest::collection::vec(any::<u64>(), 0..100),
            b in proptest::collection::vec(any::<u64>(), 0..100),
        ) {
            let (mut ha, mut hb, mut both) = (Histogram::new(), Histogram::new(), Histogram::new());
            for &v in &a { ha.record_us(v); both.record_us(v); }
            for &v in &b { hb.record_us(v); both.record_us(v); }
            ha.merge(&hb);
            prop_assert_eq!(ha, both);
        }
    }
}
