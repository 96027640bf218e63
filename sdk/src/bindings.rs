//! Generated bindings for the contract's worlds. Plugin authors normally use
//! the re-exports at the crate root instead.

wit_bindgen::generate!({
    path: "wit",
    world: "registry-plugin",
    pub_export_macro: true,
    export_macro_name: "__export_registry_world",
    default_bindings_module: "ggen_plugin_sdk::bindings",
    additional_derives: [Clone, PartialEq, serde::Serialize, serde::Deserialize],
    generate_all,
});

pub use ggen::marketplace::{host, types};

/// The `post-install-hook` world, sharing the types and host imports above.
pub mod hook {
    wit_bindgen::generate!({
        path: "wit",
        world: "post-install-hook",
        pub_export_macro: true,
        export_macro_name: "__export_hook_world",
        default_bindings_module: "ggen_plugin_sdk::bindings::hook",
        additional_derives: [Clone, PartialEq, serde::Serialize, serde::Deserialize],
        with: {
            "ggen:marketplace/types@0.1.0": crate::bindings::types,
            "ggen:marketplace/host@0.1.0": crate::bindings::host,
        },
    });
}

/// The `p2p-policy-plugin` world, sharing the types and host imports above.
pub mod policy {
    wit_bindgen::generate!({
        path: "wit",
        world: "p2p-policy-plugin",
        pub_export_macro: true,
        export_macro_name: "__export_policy_world",
        default_bindings_module: "ggen_plugin_sdk::bindings::policy",
        additional_derives: [Clone, PartialEq, serde::Serialize, serde::Deserialize],
        with: {
            "ggen:marketplace/types@0.1.0": crate::bindings::types,
            "ggen:marketplace/host@0.1.0": crate::bindings::host,
        },
    });
}
