//! Only here so that `syn`'s features are unified for build scripts and
//! proc macros too (see Cargo.toml).
fn main() {}
