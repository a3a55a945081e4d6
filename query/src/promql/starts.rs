//! What start times (when the count that reached a sample began; 0 when unknown) tell
//! the counter functions, as Prometheus reads them: a start time after the previous
//! sample is a reset, and a start time inside the window stands for a zero sample there
//! in place of extrapolating to the window's start.

/// Whether the sample at `cur_t` (start `cur_st`) restarted the count since the sample
/// at `prev_t` (start `prev_st`).
pub(crate) fn is_reset(prev_st: i64, prev_t: i64, cur_st: i64, cur_t: i64) -> bool {
    // Unknown, invalid (after the sample), or OTel's "unknown start" (at the sample).
    if cur_st == 0 || cur_st >= cur_t || cur_st < prev_t {
        return false;
    }
    if cur_st > prev_t {
        return true;
    }
    // The start is the previous sample: a delta point (a reset) if the previous one had
    // a start of its own, else a cumulative series whose start is unknown.
    prev_st != 0 && prev_st != prev_t && prev_st <= prev_t
}

/// Whether the points `i` and `i + 1` (times `prev_t`, `cur_t`) of a list whose start
/// times are `sts` (empty: none known) have a reset between them by their start times.
pub(crate) fn reset_between(sts: &[i64], i: usize, prev_t: i64, cur_t: i64) -> bool {
    sts.len() > i + 1 && is_reset(sts[i], prev_t, sts[i + 1], cur_t)
}

/// The start time of the first point (at `first_t`) of a window starting after
/// `range_start`, when it lies inside the window: a zero sample is taken to be there.
pub(crate) fn zero_point(sts: &[i64], range_start: i64, first_t: i64) -> Option<i64> {
    let st = *sts.first()?;
    (st != 0 && st > range_start && st < first_t).then_some(st)
}

/// Whether a sample's start time lies before the previous sample without being the same
/// start (neither a delta nor a continued cumulative count), for points at `times`.
pub(crate) fn overlap(sts: &[i64], times: impl Iterator<Item = i64>) -> bool {
    times
        .zip(sts.windows(2))
        .any(|(prev_t, st)| st[1] != 0 && st[1] < prev_t && st[1] != st[0])
}

pub(crate) fn overlap_warning(metric: &str) -> String {
    format!(
        "PromQL warning: sample has start time that overlaps with previous sample timestamp for metric {metric:?}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_times_after_the_previous_sample_are_resets() {
        // Cumulative from a start at 100: no reset; a new start after 1000: reset.
        assert!(!is_reset(100, 1000, 100, 2000));
        assert!(is_reset(100, 1000, 1500, 2000));
        // Delta points start at the previous sample; with an unknown start before, the
        // series is cumulative with an unknown start.
        assert!(is_reset(500, 1000, 1000, 2000));
        assert!(!is_reset(0, 1000, 1000, 2000));
        assert!(!is_reset(3000, 1000, 1000, 2000));
        // Unknown, at the sample, or after it: no information.
        assert!(!is_reset(100, 1000, 0, 2000));
        assert!(!is_reset(100, 1000, 2000, 2000));
        assert!(!is_reset(100, 1000, 2500, 2000));
    }

    #[test]
    fn a_start_inside_the_window_is_a_zero_point_and_overlaps_are_found() {
        assert_eq!(zero_point(&[150, 150], 100, 200), Some(150));
        assert_eq!(zero_point(&[100, 150], 100, 200), None);
        assert_eq!(zero_point(&[0, 150], 100, 200), None);
        assert_eq!(zero_point(&[], 100, 200), None);
        let times = [1000, 2000, 3000];
        assert!(!overlap(&[500, 500, 500], times.into_iter()));
        assert!(!overlap(&[500, 1000, 2000], times.into_iter()));
        assert!(overlap(&[500, 700, 700], times.into_iter()));
    }
}
