//! Policy files as shipped: the embedded default and the presets in `policies/`. The UI
//! fixtures (each valid or invalid file with its exact output) are checked inside the
//! `ks-policies` crate, next to the code that produces the messages.

use ks_policies::{Policy, PolicyDir};

#[test]
fn shipped_presets_are_valid() {
    let dir = PolicyDir::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../policies"));
    for name in ["default", "small", "large"] {
        dir.resolve(name)
            .unwrap_or_else(|e| panic!("preset {name}: {e}"));
    }
    assert_eq!(dir.resolve("default").expect("default"), Policy::default());
    assert_eq!(
        dir.presets().expect("presets"),
        ["default", "large", "small"]
    );
}

#[test]
fn presets_only_lower_or_raise_caps_within_the_schema() {
    let dir = PolicyDir::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../policies"));
    let small = dir.resolve("small").expect("small");
    let large = dir.resolve("large").expect("large");
    let default = Policy::default();
    assert!(
        small.limits.memory < default.limits.memory && default.limits.memory < large.limits.memory
    );
    assert!(
        small.limits.wall_time < default.limits.wall_time
            && default.limits.wall_time < large.limits.wall_time
    );
}
