//! Host-side bindings of the WIT contract (../wit), one module per world;
//! every world shares the `types` and `host` interfaces generated here.

wasmtime::component::bindgen!({
    path: "../wit",
    world: "registry-plugin",
    imports: { default: trappable },
    with: {
        "ggen:marketplace/host.byte-source": super::host_api::ByteSource,
    },
});

pub mod hook {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "post-install-hook",
        imports: { default: trappable },
        with: {
            "ggen:marketplace/types": crate::backend::plugin::bindings::ggen::marketplace::types,
            "ggen:marketplace/host": crate::backend::plugin::bindings::ggen::marketplace::host,
        },
    });
}

pub mod policy {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "p2p-policy-plugin",
        imports: { default: trappable },
        with: {
            "ggen:marketplace/types": crate::backend::plugin::bindings::ggen::marketplace::types,
            "ggen:marketplace/host": crate::backend::plugin::bindings::ggen::marketplace::host,
        },
    });
}
