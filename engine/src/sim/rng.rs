//! The Sim engine's dice: a splitmix64 generator and FNV-1a seeding, integer-only so every
//! machine rolls the same numbers for the same seed.

/// A small, fast, portable pseudo-random generator (splitmix64).
#[derive(Debug, Clone)]
pub(crate) struct Dice {
    state: u64,
}

impl Dice {
    pub(crate) fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (0 when `n` is 0), by multiply-shift so there is no modulo bias
    /// worth speaking of at these sizes.
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        let wide = u128::from(self.next_u64()) * u128::from(n);
        // The high half of a u64 * u64 product always fits in a u64.
        u64::try_from(wide >> 64).unwrap_or(0)
    }

    /// True with probability `per_mille / 1000`.
    pub(crate) fn chance(&mut self, per_mille: u64) -> bool {
        self.below(1000) < per_mille
    }
}

/// FNV-1a (64-bit) of a string: the seed of a battle whose request carries none.
pub(crate) fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xCBF2_9CE4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01B3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix64_matches_the_reference_sequence() {
        // First outputs of the reference splitmix64 for seed 0.
        let mut dice = Dice::new(0);
        assert_eq!(dice.next_u64(), 0xE220_A839_7B1D_CDAF);
        assert_eq!(dice.next_u64(), 0x6E78_9E6A_A1B9_65F4);
    }

    #[test]
    fn fnv1a_matches_the_reference_values() {
        assert_eq!(fnv1a(""), 0xCBF2_9CE4_8422_2325);
        assert_eq!(fnv1a("a"), 0xAF63_DC4C_8601_EC8C);
    }

    #[test]
    fn below_stays_in_range() {
        let mut dice = Dice::new(42);
        assert_eq!(dice.below(0), 0);
        for n in [1_u64, 2, 7, 1000] {
            for _ in 0..200 {
                assert!(dice.below(n) < n);
            }
        }
    }
}
