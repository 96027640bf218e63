//! A 256-bit summary of the byte pairs in a record's text.
//!
//! A record can only contain a term if its signature holds every byte pair of
//! the term, so the scan rules out most records with four word operations and
//! never touches their text. Scalar word operations cost about the same inside
//! the sandbox as natively, whereas a vectorised substring search over every
//! record runs several times slower there (128-bit SIMD against AVX2).

/// Bytes of a signature in the search index.
pub const LEN: usize = 32;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Signature([u64; 4]);

impl Signature {
    pub fn of_text(text: &[u8]) -> Self {
        Self::of_terms([text])
    }

    /// What a record must hold to contain every term.
    pub fn of_terms<'a>(terms: impl IntoIterator<Item = &'a [u8]>) -> Self {
        let mut sig = Self::default();
        for pair in terms.into_iter().flat_map(|t| t.windows(2)) {
            let bit = pair_bit(pair[0], pair[1]);
            sig.0[bit >> 6] |= 1 << (bit & 63);
        }
        sig
    }

    pub fn covers(&self, wanted: &Self) -> bool {
        (self.0[0] & wanted.0[0] == wanted.0[0])
            & (self.0[1] & wanted.0[1] == wanted.0[1])
            & (self.0[2] & wanted.0[2] == wanted.0[2])
            & (self.0[3] & wanted.0[3] == wanted.0[3])
    }

    pub fn to_bytes(self) -> [u8; LEN] {
        let mut out = [0; LEN];
        for (chunk, word) in out.chunks_exact_mut(8).zip(self.0) {
            chunk.copy_from_slice(&word.to_le_bytes());
        }
        out
    }

    pub fn from_bytes(bytes: &[u8; LEN]) -> Self {
        Self(std::array::from_fn(|i| {
            u64::from_le_bytes(bytes[i * 8..i * 8 + 8].try_into().unwrap())
        }))
    }
}

/// Which of the 256 bits a byte pair sets (multiplicative hashing spreads
/// the pairs of lowercase text over all of them).
fn pair_bit(a: u8, b: u8) -> usize {
    (u32::from(u16::from_le_bytes([a, b])).wrapping_mul(0x9E37_79B1) >> 24) as usize
}
