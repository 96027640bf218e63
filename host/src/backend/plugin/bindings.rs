//! Host-side bindings of the WIT contract (../wit).

wasmtime::component::bindgen!({
    path: "../wit",
    world: "registry-plugin",
    imports: { default: trappable },
    with: {
        "ggen:marketplace/host.byte-source": super::host_api::ByteSource,
    },
});
