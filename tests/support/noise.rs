//! Test and benchmark payloads (the benchmarks include this file too).

/// Incompressible bytes (xorshift), so a file of `len` bytes packs to about as much.
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}
