//! Element-wise comparison of computed and expected outputs.

use super::{OutputComparison, Tolerance};

/// How agreement beyond the raw numbers is measured for an output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Agreement {
    /// Fraction of positions whose argmax over the last axis (the vocabulary) matches.
    ArgmaxLastAxis,
    /// Fraction of elements whose sign (logit > 0, "replaced") matches.
    Sign,
    None,
}

/// Compare `ours` with `expected` (same length, row-major over `shape`) using numpy's
/// `allclose` rule `|ours - expected| <= atol + rtol * |expected|` element by element.
/// A NaN on either side is a mismatch (numpy's `equal_nan=False`).
pub(crate) fn compare(
    ours: &[f32],
    expected: &[f64],
    shape: &[usize],
    tol: Tolerance,
    agreement: Agreement,
) -> OutputComparison {
    debug_assert_eq!(ours.len(), expected.len());
    let mut max_abs = 0f64;
    let mut max_rel = 0f64;
    let mut mismatched = 0usize;
    let mut worst = None;
    let mut worst_excess = f64::NEG_INFINITY;
    for (i, (&a, &b)) in ours.iter().zip(expected).enumerate() {
        let a = a as f64;
        let diff = (a - b).abs();
        let allowed = tol.atol + tol.rtol * b.abs();
        let ok = diff <= allowed; // false for NaN
        if !ok {
            mismatched += 1;
        }
        if diff.is_nan() {
            max_abs = f64::NAN;
            max_rel = f64::NAN;
        } else if !max_abs.is_nan() {
            max_abs = max_abs.max(diff);
            if b != 0.0 {
                max_rel = max_rel.max(diff / b.abs());
            }
        }
        let excess = if diff.is_nan() {
            f64::INFINITY
        } else {
            diff - allowed
        };
        if excess > worst_excess {
            worst_excess = excess;
            worst = Some(i);
        }
    }
    let argmax_agreement = match agreement {
        Agreement::None => None,
        Agreement::Sign => {
            let same = ours
                .iter()
                .zip(expected)
                .filter(|(&a, &b)| (a > 0.0) == (b > 0.0))
                .count();
            Some(fraction(same, ours.len()))
        }
        Agreement::ArgmaxLastAxis => {
            let width = shape.last().copied().unwrap_or(1).max(1);
            let rows = ours.len() / width;
            let same = (0..rows)
                .filter(|r| {
                    let range = r * width..(r + 1) * width;
                    argmax(&ours[range.clone()]) == argmax(&expected[range])
                })
                .count();
            Some(fraction(same, rows))
        }
    };
    OutputComparison {
        max_abs_diff: max_abs,
        max_rel_diff: max_rel,
        argmax_agreement,
        agreement: match agreement {
            Agreement::ArgmaxLastAxis => Some("argmax over the vocabulary, per position".into()),
            Agreement::Sign => Some("sign of the logit (replaced or not), per position".into()),
            Agreement::None => None,
        },
        passed: mismatched == 0,
        shape: shape.to_vec(),
        mismatched,
        worst_index: worst.map(|i| unravel(i, shape)),
    }
}

/// A comparison that could not be made element-wise because the shapes differ.
pub(crate) fn shape_mismatch(ours: &[usize], expected: &[usize]) -> OutputComparison {
    OutputComparison {
        max_abs_diff: f64::INFINITY,
        max_rel_diff: f64::INFINITY,
        argmax_agreement: None,
        agreement: Some(format!(
            "shapes differ: converted model {ours:?}, expected {expected:?}"
        )),
        passed: false,
        shape: ours.to_vec(),
        mismatched: expected.iter().product(),
        worst_index: None,
    }
}

fn fraction(n: usize, of: usize) -> f64 {
    if of == 0 {
        1.0
    } else {
        n as f64 / of as f64
    }
}

/// Index of the largest value (the first one on ties); `None` for an empty slice or any NaN.
fn argmax<T: Copy + PartialOrd>(v: &[T]) -> Option<usize> {
    let mut best: Option<(usize, T)> = None;
    for (i, &x) in v.iter().enumerate() {
        // Only NaN is unordered with itself: no argmax then.
        x.partial_cmp(&x)?;
        if best.is_none_or(|(_, b)| x > b) {
            best = Some((i, x));
        }
    }
    best.map(|(i, _)| i)
}

fn unravel(mut index: usize, shape: &[usize]) -> Vec<usize> {
    let mut out = vec![0; shape.len()];
    for (slot, &dim) in out.iter_mut().zip(shape).rev() {
        if dim > 0 {
            *slot = index % dim;
            index /= dim;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOL: Tolerance = Tolerance {
        atol: 1e-4,
        rtol: 1e-4,
    };

    #[test]
    fn allclose_rule() {
        // |a-b| = 1.5e-4 <= 1e-4 + 1e-4 * 1.0 = 2e-4 → passes.
        let c = compare(&[1.00015], &[1.0], &[1], TOL, Agreement::None);
        assert!(c.passed, "{c:?}");
        // 3e-4 > 2e-4 → fails.
        let c = compare(&[1.0003], &[1.0], &[1], TOL, Agreement::None);
        assert!(!c.passed);
        assert_eq!(c.mismatched, 1);
        assert!((c.max_abs_diff - 3e-4).abs() < 1e-6);
        assert!((c.max_rel_diff - 3e-4).abs() < 1e-6);
    }

    #[test]
    fn nan_fails() {
        let c = compare(&[f32::NAN, 1.0], &[0.0, 1.0], &[2], TOL, Agreement::None);
        assert!(!c.passed);
        assert!(c.max_abs_diff.is_nan());
        assert_eq!(c.worst_index, Some(vec![0]));
    }

    #[test]
    fn argmax_takes_the_first_maximum_and_refuses_nan() {
        assert_eq!(argmax(&[0.5f32, 2.0, 2.0, -1.0]), Some(1));
        assert_eq!(argmax(&[-3.0f64, -1.0, -2.0]), Some(1));
        assert_eq!(argmax(&[1.0f64, f64::NAN, 3.0]), None);
        assert_eq!(argmax::<f32>(&[]), None);
    }

    #[test]
    fn agreements() {
        let c = compare(
            &[1.0, -1.0, 0.5, 2.0],
            &[1.0, 1.0, 0.5, 2.0],
            &[4],
            TOL,
            Agreement::Sign,
        );
        assert_eq!(c.argmax_agreement, Some(0.75));
        assert_eq!(c.worst_index, Some(vec![1]));
        let c = compare(
            &[0.0, 1.0, 2.0, 5.0, 1.0, 0.0],
            &[0.0, 1.0, 2.0, 0.0, 1.0, 5.0],
            &[2, 3],
            TOL,
            Agreement::ArgmaxLastAxis,
        );
        assert_eq!(c.argmax_agreement, Some(0.5));
        assert_eq!(c.worst_index, Some(vec![1, 0]));
    }
}
