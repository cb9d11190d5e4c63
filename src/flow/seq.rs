//! Sequence number comparison in the 32-bit circular space (RFC 9293 3.4):
//! `a` is after `b` when the forward distance from `b` to `a` is less than 2^31.

/// `a` comes strictly after `b`.
pub fn seq_after(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) > 0
}

/// `a` is `b` or comes after it.
pub fn seq_at_or_after(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) >= 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn after_across_the_wrap() {
        assert!(seq_after(5, u32::MAX - 5));
        assert!(!seq_after(u32::MAX - 5, 5));
    }

    #[test]
    fn equal_is_not_after() {
        assert!(!seq_after(7, 7));
        assert!(seq_at_or_after(7, 7));
    }

    #[test]
    fn plain_order() {
        assert!(seq_after(1000, 999));
        assert!(!seq_at_or_after(999, 1000));
    }
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// Order is the same on both sides of the 2^32 wrap: moving both
        /// numbers by the same amount never changes which comes first.
        #[test]
        fn order_survives_any_shift(a in any::<u32>(), d in 1u32..(1 << 31), shift in any::<u32>()) {
            let b = a.wrapping_add(d);
            prop_assert!(seq_after(b, a));
            prop_assert!(!seq_after(a, b));
            prop_assert!(seq_after(b.wrapping_add(shift), a.wrapping_add(shift)));
            prop_assert!(seq_at_or_after(a, a));
        }
    }
}
