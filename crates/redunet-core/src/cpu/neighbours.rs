//! The k most similar training rows of every query, by inner product, on
//! the host: kNN's search.
//!
//! The similarities are formed a tile at a time (a block of queries against
//! a panel of training rows, one gemm call on one core, the tile in the
//! core's L2) and each row of a tile is scanned into its query's running
//! top k at once, so the `n × m` similarity matrix never exists and the
//! training rows are packed once per tile, not once per few queries. The
//! tiles run side by side on every core.
//!
//! Order: a larger similarity first and, between equal ones, the lower
//! training index (a total order, so the k kept do not depend on how the
//! work was split).

use super::gemm::{Threads, View, matmul};
use rayon::prelude::*;
use std::cmp::Ordering;

/// Queries per tile, and training rows per panel: a 512 × 512 f32 tile is
/// 1 MiB, half an L2 here. Square tiles pack the fewest rows per product
/// (both sides are packed at every call): 203 GFLOP/s against 166 for
/// 128 × 2048, with 60,000 training rows (measured with a timing program).
const QUERIES: usize = 512;
const PANEL: usize = 512;

/// Whether `(s, i)` comes before `(t, j)`: the larger similarity (by
/// `total_cmp`), then the lower index.
#[inline]
fn before(s: f32, i: usize, t: f32, j: usize) -> bool {
    match s.total_cmp(&t) {
        Ordering::Greater => true,
        Ordering::Less => false,
        Ordering::Equal => i < j,
    }
}

/// A query's best `k` so far, first to last in the order above.
#[derive(Debug, Clone)]
pub struct TopK {
    k: usize,
    best: Vec<(f32, usize)>,
    /// Nothing below it can be among the k wanted (another part of the
    /// search holds k at least this large), so nothing below it is kept.
    bar: f32,
}

impl TopK {
    /// None kept yet, room for `k`.
    pub fn new(k: usize) -> Self {
        Self::above(k, f32::NEG_INFINITY)
    }

    /// [`Self::new`], for a part of a search whose whole already holds k
    /// similarities of at least `bar`.
    fn above(k: usize, bar: f32) -> Self {
        Self {
            k,
            best: Vec::with_capacity(k + 1),
            bar,
        }
    }

    /// The value a similarity must reach to be offered at all: the last
    /// kept one's once k are kept.
    #[inline]
    fn floor(&self) -> f32 {
        match self.best.len() == self.k {
            true => self.best.last().expect("k ≥ 1").0,
            false => self.bar,
        }
    }

    /// Offers `(similarity, index)`.
    #[inline]
    fn offer(&mut self, s: f32, i: usize) {
        if s < self.bar {
            return;
        }
        if self.best.len() == self.k {
            let &(t, j) = self.best.last().expect("k ≥ 1");
            if !before(s, i, t, j) {
                return;
            }
            self.best.pop();
        }
        let at = self.best.partition_point(|&(t, j)| before(t, j, s, i));
        self.best.insert(at, (s, i));
    }

    /// Offers the similarities `row` of the training rows `first..`, in
    /// ascending index order.
    pub fn scan(&mut self, row: &[f32], first: usize) {
        super::vectorized(|| {
            // Once k are kept, only a value at least the last kept one's
            // can enter; blocks of 16 are skipped on their maximum alone.
            let mut j = 0;
            while j < row.len() {
                let end = (j + 16).min(row.len());
                let block = &row[j..end];
                {
                    let floor = self.floor();
                    let top = block
                        .iter()
                        .fold(f32::NEG_INFINITY, |a, &b| if b > a { b } else { a });
                    // `<` takes −0.0 and +0.0 as equal: those reach the
                    // exact test.
                    if top < floor {
                        j = end;
                        continue;
                    }
                }
                for (o, &s) in block.iter().enumerate() {
                    self.offer(s, first + j + o);
                }
                j = end;
            }
        })
    }

    /// Takes in another's kept values (of other training rows).
    fn merge(&mut self, other: &TopK) {
        for &(s, i) in &other.best {
            self.offer(s, i);
        }
    }

    /// The kept training indices, first to last.
    pub fn indices(&self) -> impl Iterator<Item = usize> + '_ {
        self.best.iter().map(|&(_, i)| i)
    }
}

/// For each of the `n` rows of `queries: [n, d]`, the `k` rows of
/// `train: [m, d]` (both row-major) of largest inner product with it
/// (`min(k, m)` of them, first to last in the module's order).
pub fn nearest(
    queries: &[f32],
    train: &[f32],
    n: usize,
    m: usize,
    d: usize,
    k: usize,
) -> Vec<TopK> {
    assert_eq!(queries.len(), n * d, "queries are [{n}, {d}]");
    assert_eq!(train.len(), m * d, "training rows are [{m}, {d}]");
    let k = k.min(m);
    if n == 0 || k == 0 {
        return (0..n).map(|_| TopK::new(k)).collect();
    }
    // Few queries leave tiles for only some cores: then the training rows
    // are split too, and each query's parts are merged at the end.
    let blocks = n.div_ceil(QUERIES);
    let want = 4 * rayon::current_num_threads();
    let parts = want.div_ceil(blocks).clamp(1, m.div_ceil(PANEL));
    let part_rows = m.div_ceil(parts);
    let found: Vec<Vec<TopK>> = (0..blocks * parts)
        .into_par_iter()
        .map(|task| {
            let (b, p) = (task / parts, task % parts);
            let rows = b * QUERIES..((b + 1) * QUERIES).min(n);
            let span = p * part_rows..((p + 1) * part_rows).min(m);
            let q = View::new(&queries[rows.start * d..rows.end * d], rows.len(), d);
            let mut tops: Vec<TopK> = rows.clone().map(|_| TopK::new(k)).collect();
            let mut tile = vec![0f32; rows.len() * PANEL];
            for start in span.clone().step_by(PANEL) {
                let end = (start + PANEL).min(span.end);
                let width = end - start;
                let t = View::new(&train[start * d..end * d], width, d).t();
                matmul(&mut tile, width, q, t, None, Threads::One);
                for (top, sims) in tops.iter_mut().zip(tile.chunks(width)) {
                    top.scan(sims, start);
                }
            }
            tops
        })
        .collect();
    let mut out = Vec::with_capacity(n);
    for group in found.chunks(parts) {
        let mut merged = group[0].clone();
        for part in &group[1..] {
            merged.iter_mut().zip(part).for_each(|(a, b)| a.merge(b));
        }
        out.extend(merged);
    }
    out
}

/// [`nearest`] of the `m` rows of `rows: [m, d]` among themselves (each
/// row is its own nearest where the inner products are those of unit
/// rows): every pair's inner product is formed once, in the tiles on and
/// below the diagonal, and offered to both rows, half the arithmetic of
/// `nearest(rows, rows, ..)` for the same `k` kept.
pub fn nearest_among(rows: &[f32], m: usize, d: usize, k: usize) -> Vec<TopK> {
    use std::sync::Mutex;
    assert_eq!(rows.len(), m * d, "rows are [{m}, {d}]");
    let k = k.min(m);
    if k == 0 {
        return (0..m).map(|_| TopK::new(k)).collect();
    }
    let span = |b: usize| b * QUERIES..((b + 1) * QUERIES).min(m);
    let blocks = m.div_ceil(QUERIES);
    let tops: Vec<Mutex<Vec<TopK>>> = (0..blocks)
        .map(|b| Mutex::new(span(b).map(|_| TopK::new(k)).collect()))
        .collect();
    let tiles: Vec<(usize, usize)> = (0..blocks)
        .flat_map(|i| (0..=i).map(move |j| (i, j)))
        .collect();
    // What a tile finds for a block is merged into the block's kept ones;
    // it starts from their floors, below which nothing it finds can enter.
    let into = |b: usize, found: &[TopK]| {
        let mut kept = tops[b].lock().unwrap_or_else(|e| e.into_inner());
        kept.iter_mut().zip(found).for_each(|(a, f)| a.merge(f));
    };
    let parts = |b: usize, out: &mut Vec<TopK>| {
        let kept = tops[b].lock().unwrap_or_else(|e| e.into_inner());
        out.clear();
        out.extend(kept.iter().map(|t| TopK::above(k, t.floor())));
    };
    tiles.par_iter().for_each_init(
        || (vec![0f32; QUERIES * QUERIES], Vec::new(), Vec::new()),
        |(tile, across, down), &(i, j)| {
            let (ri, rj) = (span(i), span(j));
            let a = View::new(&rows[ri.start * d..ri.end * d], ri.len(), d);
            let b = View::new(&rows[rj.start * d..rj.end * d], rj.len(), d);
            matmul(tile, rj.len(), a, b.t(), None, Threads::One);
            // The rows of block i against the columns of block j …
            parts(i, across);
            for (top, sims) in across.iter_mut().zip(tile.chunks(rj.len())) {
                top.scan(sims, rj.start);
            }
            into(i, across);
            if i == j {
                return;
            }
            // … and, read down its columns, those of block j against the
            // rows of block i, each offered in ascending row order.
            parts(j, down);
            let mut floors: Vec<f32> = down.iter().map(TopK::floor).collect();
            for (r, sims) in tile.chunks(rj.len()).take(ri.len()).enumerate() {
                for (c, &s) in sims.iter().enumerate() {
                    if s >= floors[c] {
                        down[c].offer(s, ri.start + r);
                        floors[c] = down[c].floor();
                    }
                }
            }
            into(j, down);
        },
    );
    tops.into_iter()
        .flat_map(|t| t.into_inner().unwrap_or_else(|e| e.into_inner()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reference: every similarity as one dot product, sorted.
    fn brute(q: &[f32], t: &[f32], d: usize, k: usize) -> Vec<Vec<usize>> {
        q.chunks(d)
            .map(|x| {
                let mut all: Vec<(f32, usize)> = t
                    .chunks(d)
                    .enumerate()
                    .map(|(i, y)| (x.iter().zip(y).map(|(a, b)| a * b).sum(), i))
                    .collect();
                all.sort_by(|a, b| {
                    if before(a.0, a.1, b.0, b.1) {
                        Ordering::Less
                    } else {
                        Ordering::Greater
                    }
                });
                all.iter().take(k).map(|&(_, i)| i).collect()
            })
            .collect()
    }

    #[test]
    fn the_k_largest_with_ties_to_the_lower_index() {
        // Small integers: every dot product is exact, whatever the order of
        // the sums, so the reference is exact too; many ties.
        let d = 5;
        let val = |s: usize| (((s * 2654435761) >> 7) % 5) as f32 - 2.0;
        for &(n, m, k) in &[
            (1, 1, 1),
            (3, 7, 10),
            (1, 5000, 5),
            (130, 2049, 5),
            (300, 4100, 17),
            (7, 9000, 1),
        ] {
            let q: Vec<f32> = (0..n * d).map(|s| val(s + 1)).collect();
            let t: Vec<f32> = (0..m * d).map(|s| val(s + 7919)).collect();
            let got: Vec<Vec<usize>> = nearest(&q, &t, n, m, d, k)
                .iter()
                .map(|top| top.indices().collect())
                .collect();
            assert_eq!(got, brute(&q, &t, d, k), "n {n} m {m} k {k}");
        }
    }

    #[test]
    fn among_themselves_as_against_a_copy() {
        let d = 3;
        let val = |s: usize| (((s * 2654435761) >> 7) % 5) as f32 - 2.0;
        for &(m, k) in &[(1, 1), (2, 5), (511, 4), (513, 5), (1500, 9)] {
            let x: Vec<f32> = (0..m * d).map(|s| val(s + 3)).collect();
            let kept = |tops: Vec<TopK>| -> Vec<Vec<usize>> {
                tops.iter().map(|t| t.indices().collect()).collect()
            };
            let among = kept(nearest_among(&x, m, d, k));
            assert_eq!(among, brute(&x, &x, d, k), "m {m} k {k}");
            assert_eq!(among, kept(nearest(&x, &x, m, m, d, k)), "m {m} k {k}");
        }
    }

    #[test]
    fn signed_zeros_and_the_order_of_offers() {
        let mut top = TopK::new(2);
        top.scan(&[0.0, -0.0, 0.0, 1.0], 10);
        assert_eq!(top.indices().collect::<Vec<_>>(), vec![13, 10]);
        // Offered in another order (as merging parts does), the same kept.
        let mut other = TopK::new(2);
        other.scan(&[0.0, 1.0], 12);
        let mut first = TopK::new(2);
        first.scan(&[0.0, -0.0], 10);
        other.merge(&first);
        assert_eq!(other.indices().collect::<Vec<_>>(), vec![13, 10]);
    }
}
