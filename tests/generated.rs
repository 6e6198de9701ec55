//! The committed completion scripts and man pages must match what the CLI definition generates.
//! Run with `LDV_BLESS=1` to rewrite them after changing the CLI.

use std::path::Path;

#[test]
fn completions_and_man_pages_are_up_to_date() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let bless = std::env::var_os("LDV_BLESS").is_some();
    let mut stale = Vec::new();
    for (rel, content) in ldv::cli::generate::artifacts() {
        let path = root.join(&rel);
        if bless {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &content).unwrap();
        } else if std::fs::read(&path).ok().as_deref() != Some(&content[..]) {
            stale.push(rel);
        }
    }
    assert!(
        stale.is_empty(),
        "generated files drifted from the CLI definition: {stale:?}; regenerate with LDV_BLESS=1 cargo test --test generated"
    );
}
