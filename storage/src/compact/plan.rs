//! What to compact and what to delete: overlapping blocks first, then adjacent blocks into
//! ranges `block_range × 3^k`, and retention by time and by size. Pure functions over block
//! descriptions, so the policy is tested without files.

/// The facts about a block the planner uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct BlockInfo {
    pub(crate) id: String,
    /// Inclusive, ms.
    pub(crate) min_time: i64,
    /// Exclusive, ms.
    pub(crate) max_time: i64,
    pub(crate) size: u64,
}

const DAY_31_MS: i64 = 31 * 24 * 3600 * 1000;

/// Compaction ranges: `block_range × 3^k` up to 10% of retention (or 31 days when retention is
/// unbounded or larger), always including `block_range`.
pub(crate) fn ranges(block_range: i64, retention_ms: Option<i64>) -> Vec<i64> {
    let cap = retention_ms.map_or(DAY_31_MS, |r| (r / 10).min(DAY_31_MS));
    let mut out = vec![block_range];
    let mut r = block_range.saturating_mul(3);
    while r <= cap && block_range > 0 {
        out.push(r);
        r = r.saturating_mul(3);
    }
    out
}

/// The next set of blocks to merge into one, if any (ids, oldest first).
pub(crate) fn plan(blocks: &[BlockInfo], ranges: &[i64]) -> Option<Vec<String>> {
    let mut b: Vec<&BlockInfo> = blocks.iter().collect();
    b.sort_by_key(|x| (x.min_time, x.max_time));
    // 1. Overlapping blocks (e.g. out-of-order data cut twice) are merged first.
    let mut group: Vec<&BlockInfo> = Vec::new();
    let mut group_max = i64::MIN;
    for x in &b {
        if !group.is_empty() && x.min_time < group_max {
            group.push(x);
            group_max = group_max.max(x.max_time);
            continue;
        }
        if group.len() > 1 {
            break;
        }
        group = vec![x];
        group_max = x.max_time;
    }
    if group.len() > 1 {
        return Some(group.iter().map(|x| x.id.clone()).collect());
    }
    // 2. Adjacent blocks that fit in one window of a larger range, once that window is complete
    //    (some block reaches past its end) or fully covered.
    let newest = b.iter().map(|x| x.max_time).max()?;
    for &r in ranges.iter().skip(1) {
        let mut i = 0;
        while i < b.len() {
            let w = b.get(i)?.min_time.div_euclid(r) * r;
            let members: Vec<&BlockInfo> = b
                .iter()
                .skip(i)
                .take_while(|x| x.min_time >= w && x.max_time <= w + r)
                .copied()
                .collect();
            if members.is_empty() {
                i += 1;
                continue;
            }
            i += members.len();
            let covered = members.first().is_some_and(|f| f.min_time == w)
                && members.last().is_some_and(|l| l.max_time == w + r);
            if members.len() > 1 && (newest >= w + r || covered) {
                return Some(members.iter().map(|x| x.id.clone()).collect());
            }
        }
    }
    None
}

/// Blocks to delete: those whose data ends more than `retention_ms` before the newest block's
/// end, then the oldest ones while the total size exceeds `retention_bytes`.
pub(crate) fn retention(
    blocks: &[BlockInfo],
    retention_ms: Option<i64>,
    retention_bytes: Option<u64>,
) -> Vec<String> {
    let mut b: Vec<&BlockInfo> = blocks.iter().collect();
    b.sort_by_key(|x| (x.min_time, x.max_time));
    let Some(newest) = b.iter().map(|x| x.max_time).max() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    if let Some(r) = retention_ms {
        b.retain(|x| {
            let drop = newest - x.max_time > r;
            if drop {
                out.push(x.id.clone());
            }
            !drop
        });
    }
    if let Some(limit) = retention_bytes {
        let mut total: u64 = b.iter().map(|x| x.size).sum();
        for x in &b {
            if total <= limit {
                break;
            }
            total -= x.size;
            out.push(x.id.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = 3600 * 1000;

    fn blk(id: &str, min: i64, max: i64) -> BlockInfo {
        BlockInfo {
            id: id.into(),
            min_time: min,
            max_time: max,
            size: 100,
        }
    }

    #[test]
    fn ranges_grow_by_three() {
        assert_eq!(ranges(2 * H, Some(15 * 24 * H)), vec![2 * H, 6 * H, 18 * H]);
        assert_eq!(ranges(2 * H, Some(10 * H)), vec![2 * H]);
        assert_eq!(*ranges(2 * H, None).last().unwrap(), 486 * H);
    }

    #[test]
    fn plans() {
        let r = ranges(2 * H, None);
        let check = |blocks: Vec<BlockInfo>, want: Option<Vec<&str>>| {
            let got = plan(&blocks, &r);
            let want = want.map(|w| w.into_iter().map(String::from).collect::<Vec<_>>());
            assert_eq!(got, want, "blocks {blocks:?}");
        };
        // Three adjacent 2h blocks fill a 6h window.
        check(
            vec![
                blk("a", 0, 2 * H),
                blk("b", 2 * H, 4 * H),
                blk("c", 4 * H, 6 * H),
            ],
            Some(vec!["a", "b", "c"]),
        );
        // Incomplete newest window: wait.
        check(vec![blk("a", 0, 2 * H), blk("b", 2 * H, 4 * H)], None);
        // A later block proves the window complete.
        check(
            vec![
                blk("a", 0, 2 * H),
                blk("b", 2 * H, 4 * H),
                blk("d", 6 * H, 8 * H),
            ],
            Some(vec!["a", "b"]),
        );
        // Overlaps win.
        check(
            vec![
                blk("a", 0, 2 * H),
                blk("o", H, 2 * H),
                blk("b", 2 * H, 4 * H),
            ],
            Some(vec!["a", "o"]),
        );
        check(vec![], None);
    }

    #[test]
    fn retention_by_time_and_size() {
        let blocks = vec![
            blk("a", 0, 2 * H),
            blk("b", 2 * H, 4 * H),
            blk("c", 4 * H, 6 * H),
        ];
        assert_eq!(retention(&blocks, Some(3 * H), None), vec!["a"]);
        assert_eq!(retention(&blocks, None, Some(150)), vec!["a", "b"]);
        assert_eq!(
            retention(&blocks, Some(100 * H), Some(1000)),
            Vec::<String>::new()
        );
    }
}
