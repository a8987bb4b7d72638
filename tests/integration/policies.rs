//! Policy files: the embedded default, the shipped presets, and the UI fixtures, each valid or
//! invalid file with the exact output a user sees.

use ks_policies::{Policy, PolicyDir};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/policies");

fn fixtures(kind: &str) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(format!("{FIXTURES}/{kind}"))
        .expect("fixture folder")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_fixture_gives_its_expected_output() {
    let valid = fixtures("valid");
    let invalid = fixtures("invalid");
    assert!(valid.len() >= 5 && invalid.len() >= 10);
    for file in valid.iter().chain(&invalid) {
        let expected = std::fs::read_to_string(file.with_extension("expected"))
            .unwrap_or_else(|e| panic!("{}: no .expected file: {e}", file.display()));
        assert_eq!(
            ks_policies::fixture_report(file),
            expected.trim_end(),
            "{}",
            file.display()
        );
    }
    for file in &invalid {
        assert!(
            Policy::from_file(file).is_err(),
            "{} must be rejected",
            file.display()
        );
    }
}

#[test]
fn shipped_presets_are_valid() {
    let dir = PolicyDir::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../policies"));
    for name in ["default", "small", "large"] {
        dir.resolve(name)
            .unwrap_or_else(|e| panic!("preset {name}: {e}"));
    }
    assert_eq!(dir.resolve("default").expect("default"), Policy::default());
}
