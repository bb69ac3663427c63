//! Word-at-a-time byte scans: "does this text hold any byte of a small set?", asked eight bytes
//! at a time. The hot path asks it of every request's path and query and of every access-log
//! field; a byte loop would cost several instructions a byte there.
//!
//! Each word test sets the high bit of some byte of its result exactly when the word holds a
//! byte it looks for. Borrows may set bits above a true match as well, so a result only answers
//! "any?", never "where?", which is all these scans ask.

const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);

/// Some byte of `x` is zero.
pub(crate) fn has_zero(x: u64) -> u64 {
    x.wrapping_sub(ONES) & !x & HIGHS
}

/// Some byte of `x` is `b`.
pub(crate) fn has_byte(x: u64, b: u8) -> u64 {
    has_zero(x ^ (ONES * u64::from(b)))
}

/// Some byte of `x` is below `n` (`n` at most 0x80: `!x` drops the bytes of 0x80 and above).
pub(crate) fn has_below(x: u64, n: u8) -> u64 {
    debug_assert!(n <= 0x80);
    x.wrapping_sub(ONES * u64::from(n)) & !x & HIGHS
}

/// Whether any byte of `bytes` is one looked for: `word` answers for eight bytes at a time
/// (non-zero: some), `byte` for the bytes left over. The two must agree.
pub(crate) fn any_byte(bytes: &[u8], word: impl Fn(u64) -> u64, byte: impl Fn(u8) -> bool) -> bool {
    let mut chunks = bytes.chunks_exact(8);
    for chunk in &mut chunks {
        let mut lanes = [0u8; 8];
        lanes.copy_from_slice(chunk);
        if word(u64::from_ne_bytes(lanes)) != 0 {
            return true;
        }
    }
    chunks.remainder().iter().any(|&b| byte(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every byte value, alone in each of the eight lanes of a word of otherwise harmless
    /// bytes, and next to every other value (borrows cross lanes, so neighbours matter).
    #[test]
    fn word_tests_agree_with_the_byte_tests_for_every_value_and_lane() {
        for target in 0..=255u8 {
            for lane in 0..8 {
                for neighbour in [b'a', 0x00, 0x7f, 0x80, 0xff, target.wrapping_add(1)] {
                    let mut lanes = [neighbour; 8];
                    lanes[lane] = target;
                    let x = u64::from_ne_bytes(lanes);
                    let any = |f: &dyn Fn(u8) -> bool| lanes.iter().any(|&b| f(b));
                    assert_eq!(has_zero(x) != 0, any(&|b| b == 0), "{lanes:?}");
                    assert_eq!(has_byte(x, b'#') != 0, any(&|b| b == b'#'), "{lanes:?}");
                    assert_eq!(has_byte(x, 0x7f) != 0, any(&|b| b == 0x7f), "{lanes:?}");
                    for n in [0x20, 0x21, 0x80] {
                        assert_eq!(has_below(x, n) != 0, any(&|b| b < n), "{n} {lanes:?}");
                    }
                }
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn any_byte_agrees_with_a_byte_loop(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..40)) {
            let slow = bytes.iter().any(|&b| b < 0x21 || b == b'#');
            let fast = any_byte(&bytes, |x| has_below(x, 0x21) | has_byte(x, b'#'), |b| b < 0x21 || b == b'#');
            proptest::prop_assert_eq!(fast, slow);
        }
    }
}
