//! Replays every seed of the fuzz corpus (`fuzz/corpus/<target>/`) through the same entry
//! points the cargo-fuzz targets call, so a crash found once stays fixed in the normal suite.
#![cfg(feature = "testkit")]

use std::path::Path;

use meshtrust::testkit::fuzz;

fn replay(target: &str, f: fn(&[u8])) -> usize {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut n = 0;
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .collect();
    entries.sort_by_key(|e| e.as_ref().map(|e| e.path()).ok());
    for entry in entries {
        let path = entry.unwrap().path();
        if path.is_file() {
            f(&std::fs::read(&path).unwrap());
            n += 1;
        }
    }
    n
}

#[test]
fn pem_corpus() {
    assert!(replay("pem", fuzz::pem) >= 20);
}

#[test]
fn cert_corpus() {
    assert!(replay("cert", fuzz::certificate) >= 5);
}

#[test]
fn bundle_corpus() {
    assert!(replay("bundle", fuzz::bundle) >= 20);
}
