//! Range planning (pure logic): which byte ranges of an object to GET, and a set of byte ranges.

use std::ops::Range;

/// How needed ranges become requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlanConfig {
    /// Ranges closer than this are fetched as one (the gap bytes are fetched too).
    pub coalesce_gap: u64,
    /// No request asks for more than this many bytes.
    pub max_piece: u64,
}

impl Default for PlanConfig {
    fn default() -> Self {
        PlanConfig {
            coalesce_gap: 64 << 10,
            max_piece: 8 << 20,
        }
    }
}

/// A set of byte offsets, kept as sorted, disjoint, non-adjacent half-open ranges.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RangeSet {
    ranges: Vec<Range<u64>>,
}

impl RangeSet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `r` (empty ranges are ignored), merging with overlapping or touching ranges.
    pub fn insert(&mut self, r: Range<u64>) {
        if r.start >= r.end {
            return;
        }
        // First range that ends at or after r.start (could touch or overlap).
        let i = self.ranges.partition_point(|x| x.end < r.start);
        // Ranges from i that start at or before r.end merge with r.
        let j = i + self.ranges[i..].partition_point(|x| x.start <= r.end);
        let mut merged = r;
        if i < j {
            merged.start = merged.start.min(self.ranges[i].start);
            merged.end = merged.end.max(self.ranges[j - 1].end);
        }
        self.ranges.splice(i..j, std::iter::once(merged));
    }

    /// Whether every byte of `r` is in the set (an empty range always is).
    pub fn contains(&self, r: &Range<u64>) -> bool {
        if r.start >= r.end {
            return true;
        }
        let i = self.ranges.partition_point(|x| x.end <= r.start);
        self.ranges
            .get(i)
            .is_some_and(|x| x.start <= r.start && r.end <= x.end)
    }

    /// The parts of `r` that are not in the set, in order.
    pub fn missing(&self, r: &Range<u64>) -> Vec<Range<u64>> {
        let mut out = Vec::new();
        let mut at = r.start;
        let i = self.ranges.partition_point(|x| x.end <= r.start);
        for x in &self.ranges[i..] {
            if x.start >= r.end {
                break;
            }
            if x.start > at {
                out.push(at..x.start);
            }
            at = at.max(x.end);
        }
        if at < r.end {
            out.push(at..r.end);
        }
        out
    }

    /// The first byte range of `r` that is missing, if any (for error messages).
    pub fn first_missing(&self, r: &Range<u64>) -> Option<Range<u64>> {
        self.missing(r).into_iter().next()
    }

    /// Total bytes in the set.
    pub fn total(&self) -> u64 {
        self.ranges.iter().map(|r| r.end - r.start).sum()
    }

    /// The ranges, sorted and disjoint.
    pub fn iter(&self) -> impl Iterator<Item = &Range<u64>> {
        self.ranges.iter()
    }

    /// Whether no byte is held.
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }
}

impl FromIterator<Range<u64>> for RangeSet {
    fn from_iter<I: IntoIterator<Item = Range<u64>>>(iter: I) -> Self {
        let mut s = RangeSet::new();
        for r in iter {
            s.insert(r);
        }
        s
    }
}

/// A range that ends past the object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OutOfBounds(pub Range<u64>);

/// The requests that fetch `needed` (any order, overlaps allowed) minus what `have` holds:
/// missing parts merged across gaps `< coalesce_gap`, then split into pieces of at most
/// `max_piece` bytes, in offset order. Every needed byte not in `have` is in exactly one piece.
pub(crate) fn plan(
    needed: &[Range<u64>],
    have: &RangeSet,
    size: u64,
    cfg: PlanConfig,
) -> Result<Vec<Range<u64>>, OutOfBounds> {
    let max_piece = cfg.max_piece.max(1);
    if let Some(r) = needed.iter().find(|r| r.start < r.end && r.end > size) {
        return Err(OutOfBounds(r.clone()));
    }
    let wanted: RangeSet = needed.iter().cloned().collect();
    let mut merged: Vec<Range<u64>> = Vec::new();
    for r in wanted.iter() {
        for m in have.missing(r) {
            match merged.last_mut() {
                Some(last) if m.start - last.end < cfg.coalesce_gap => last.end = m.end,
                _ => merged.push(m),
            }
        }
    }
    let mut pieces = Vec::new();
    for r in merged {
        // Equal pieces rather than full ones plus a runt.
        let n = (r.end - r.start).div_ceil(max_piece);
        let len = (r.end - r.start).div_ceil(n);
        let mut at = r.start;
        while at < r.end {
            let end = (at + len).min(r.end);
            pieces.push(at..end);
            at = end;
        }
    }
    Ok(pieces)
}

#[cfg(test)]
#[allow(clippy::single_range_in_vec_init)]
mod tests {
    use super::*;

    const KI: u64 = 1 << 10;
    const MI: u64 = 1 << 20;

    fn cfg(gap: u64, piece: u64) -> PlanConfig {
        PlanConfig {
            coalesce_gap: gap,
            max_piece: piece,
        }
    }

    #[test]
    fn range_set_merges_and_answers() {
        let mut s = RangeSet::new();
        s.insert(10..20);
        s.insert(30..40);
        s.insert(20..25); // touches 10..20
        s.insert(5..5); // empty
        assert_eq!(s.iter().cloned().collect::<Vec<_>>(), vec![10..25, 30..40]);
        s.insert(0..100);
        assert_eq!(s.iter().cloned().collect::<Vec<_>>(), vec![0..100]);
        let s: RangeSet = [10..20, 30..40, 50..60].into_iter().collect();
        assert!(s.contains(&(10..20)) && s.contains(&(12..13)) && s.contains(&(7..7)));
        assert!(!s.contains(&(19..31)) && !s.contains(&(0..1)) && !s.contains(&(60..61)));
        assert_eq!(s.missing(&(0..70)), vec![0..10, 20..30, 40..50, 60..70]);
        assert_eq!(s.missing(&(15..35)), vec![20..30]);
        assert_eq!(s.missing(&(31..39)), vec![]);
        assert_eq!(s.first_missing(&(15..35)), Some(20..30));
        assert_eq!(s.total(), 30);
        let mut s: RangeSet = [50..60, 10..20].into_iter().collect();
        s.insert(15..55);
        assert_eq!(s.iter().cloned().collect::<Vec<_>>(), vec![10..60]);
    }

    #[test]
    fn merges_across_small_gaps_only() {
        let needed = [
            0..100,
            100 + 64 * KI - 1..200_000,
            200_000 + 64 * KI..300_000,
        ];
        let p = plan(&needed, &RangeSet::new(), 1 << 30, cfg(64 * KI, 8 * MI)).unwrap();
        // A gap of 64 KiB - 1 merges; a gap of exactly 64 KiB does not.
        assert_eq!(p, vec![0..200_000, 200_000 + 64 * KI..300_000]);
    }

    #[test]
    fn splits_into_equal_bounded_pieces() {
        let p = plan(
            &[0..20 * MI + 1],
            &RangeSet::new(),
            1 << 30,
            cfg(64 * KI, 8 * MI),
        )
        .unwrap();
        assert_eq!(p.len(), 3);
        assert!(p.iter().all(|r| r.end - r.start <= 8 * MI));
        assert_eq!(p.first().unwrap().start, 0);
        assert_eq!(p.last().unwrap().end, 20 * MI + 1);
        assert!(p.windows(2).all(|w| w[0].end == w[1].start));
    }

    #[test]
    fn skips_what_is_held_and_overlaps_once() {
        let have: RangeSet = [100..200].into_iter().collect();
        let p = plan(&[0..300, 50..150, 250..260], &have, 1000, cfg(0, 1000)).unwrap();
        assert_eq!(p, vec![0..100, 200..300]);
        let p = plan(&[0..300], &have, 1000, cfg(1000, 1000)).unwrap();
        assert_eq!(
            p,
            vec![0..300],
            "a held gap smaller than the coalescing gap is fetched again"
        );
        assert_eq!(plan(&[120..180], &have, 1000, cfg(0, 10)).unwrap(), vec![]);
        assert_eq!(
            plan(&[5..5], &RangeSet::new(), 0, cfg(0, 10)).unwrap(),
            vec![]
        );
    }

    #[test]
    fn refuses_ranges_past_the_end() {
        assert_eq!(
            plan(
                &[0..10, 90..101],
                &RangeSet::new(),
                100,
                PlanConfig::default()
            ),
            Err(OutOfBounds(90..101))
        );
        assert!(plan(&[0..100], &RangeSet::new(), 100, PlanConfig::default()).is_ok());
    }

    /// The base-checkpoint shape of the reference: small tensors between large Adam slots.
    #[test]
    fn covers_every_needed_byte_exactly_once() {
        let mut needed = Vec::new();
        let mut at = 0u64;
        for i in 0..200u64 {
            let len = if i % 7 == 0 { 9 * MI + i } else { 3 * KI + i };
            needed.push(at..at + len);
            at += 3 * len; // the variable, then two slots of the same size
        }
        let p = plan(&needed, &RangeSet::new(), at, PlanConfig::default()).unwrap();
        let got: RangeSet = p.iter().cloned().collect();
        assert!(needed.iter().all(|r| got.contains(r)));
        assert!(
            p.windows(2).all(|w| w[0].end <= w[1].start),
            "sorted and disjoint"
        );
        assert!(p.iter().all(|r| r.end - r.start <= 8 * MI));
        let needed_total: u64 = needed.iter().map(|r| r.end - r.start).sum();
        assert!(
            got.total() < needed_total + needed_total / 20,
            "{} vs {}",
            got.total(),
            needed_total
        );
    }
}
