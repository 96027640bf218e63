//! ggen marketplace host library: the domain (search, publish, info, ...) and
//! the backends it drives (the WebAssembly plugin runtime, archives, the
//! on-disk layout). The `ggen` binary's CLI sits on top (src/cli), and
//! builds the backends for the domain through `session`.
//!
//! Layers point one way: cli → (session) → domain → backend. The domain
//! knows neither clap nor wasmtime.

pub mod backend;
pub mod config;
pub mod domain;
pub mod home;
pub mod session;
