//! Histogram buckets for the rollups: round-number log buckets for workload values, the
//! nearest power of two for memory.
//!
//! Workload buckets start at the "nice" steps 1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8 of every
//! decade from 0.001 up, so no bucket is wider than a third of its lower bound and every
//! bound reads well on an axis. Bucket 0 holds everything below 0.001, zero included.

/// The steps of a decade, times ten (so that bounds are computed without rounding error).
const STEPS_X10: [u64; 10] = [10, 12, 15, 20, 25, 30, 40, 50, 60, 80];
/// The first decade is 10^-3.
const FIRST_DECADE: i32 = -3;
/// Decades up to 10^19, past the largest `u64`.
const DECADES: i32 = 23;
/// Largest bucket index.
pub(crate) const LAST_BUCKET: i64 = DECADES as i64 * 10;

/// The bucket of a workload value; `None` for values that cannot be counted.
pub(crate) fn bucket(value: f64) -> Option<i64> {
    if !value.is_finite() || value < 0.0 {
        return None;
    }
    // Bucket bounds increase with the index, so the last bound not above the value wins;
    // a binary search keeps this exact at the bounds themselves.
    let (mut low, mut high) = (0, LAST_BUCKET);
    while low < high {
        let middle = (low + high + 1) / 2;
        if lower_bound(middle) <= value {
            low = middle;
        } else {
            high = middle - 1;
        }
    }
    Some(low)
}

/// The smallest value of bucket `index` (0 for bucket 0).
pub(crate) fn lower_bound(index: i64) -> f64 {
    if index <= 0 {
        return 0.0;
    }
    let step = STEPS_X10[((index - 1) % 10) as usize] as f64;
    // The step is ten times too large: one decade less.
    let exponent = ((index - 1) / 10) as i32 + FIRST_DECADE - 1;
    if exponent >= 0 {
        step * 10f64.powi(exponent)
    } else {
        step / 10f64.powi(-exponent)
    }
}

/// The first value past bucket `index`.
pub(crate) fn upper_bound(index: i64) -> f64 {
    if index >= LAST_BUCKET {
        f64::INFINITY
    } else {
        lower_bound(index + 1)
    }
}

/// The power of two nearest to `bytes` on a log scale, as its exponent.
pub(crate) fn memory_bucket(bytes: u64) -> Option<u32> {
    if bytes == 0 {
        return None;
    }
    let floor = 63 - bytes.leading_zeros();
    // Half-way between 2^floor and 2^(floor+1) on a log scale is 2^(floor + 0.5).
    let midpoint = 2f64.powf(f64::from(floor) + 0.5);
    Some(if bytes as f64 >= midpoint {
        floor + 1
    } else {
        floor
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_are_round_numbers_and_values_land_in_their_bucket() {
        assert_eq!(bucket(0.0), Some(0));
        assert_eq!(bucket(0.0009), Some(0));
        assert_eq!(lower_bound(1), 0.001);
        assert_eq!(bucket(0.001), Some(1));
        for (value, lower) in [
            (1.0, 1.0),
            (1.19, 1.0),
            (1.2, 1.2),
            (10.0, 10.0),
            (199.0, 150.0),
            (200.0, 200.0),
            (3000.0, 3000.0),
            (0.5, 0.5),
            (12_345.0, 12_000.0),
        ] {
            let index = bucket(value).expect("a bucket");
            assert_eq!(lower_bound(index), lower, "{value}");
            assert!(value < upper_bound(index), "{value}");
        }
        assert_eq!(bucket(u64::MAX as f64), Some(LAST_BUCKET - 7));
        assert_eq!(bucket(f64::NAN), None);
        assert_eq!(bucket(-1.0), None);
    }

    #[test]
    fn memory_rounds_to_the_nearest_power_of_two() {
        let gib = 1u64 << 30;
        assert_eq!(memory_bucket(8 * gib), Some(33));
        assert_eq!(memory_bucket(8 * gib - gib / 2), Some(33));
        assert_eq!(memory_bucket(16_777_216_000), Some(34));
        assert_eq!(memory_bucket(11 * gib), Some(33));
        assert_eq!(memory_bucket(12 * gib), Some(34));
        assert_eq!(memory_bucket(0), None);
    }
}
