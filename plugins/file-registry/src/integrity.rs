//! A cheap hash of cached bytes, checked where they are used: the derived
//! index is a cache, and a flipped bit in it (bit rot, not an adversary:
//! whoever can write it can write the registry) must not pass for data.

/// FNV-1a (64-bit) over `parts` back to back: cheap enough to cover every
/// entry at each rebuild (tens of milliseconds at 100k packages).
pub fn fnv1a(parts: &[&[u8]]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in parts.iter().flat_map(|p| p.iter()) {
        hash = (hash ^ u64::from(*byte)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// `bytes` with its hash in front, as stored.
pub fn sealed(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + bytes.len());
    out.extend_from_slice(&fnv1a(&[bytes]).to_le_bytes());
    out.extend_from_slice(bytes);
    out
}

/// What [`sealed`] stored, if its hash still matches.
pub fn unsealed(stored: &[u8]) -> Option<&[u8]> {
    let (hash, bytes) = stored.split_at_checked(8)?;
    (fnv1a(&[bytes]).to_le_bytes() == hash).then_some(bytes)
}
