//! Replays every input of the broker's committed fuzz corpora (`broker/fuzz/corpus/<target>`)
//! through the fuzz targets' own checks, so what the fuzzer once found stays fixed under a
//! plain `cargo test`.

use std::fs;
use std::path::Path;

fn replay(target: &str, check: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let entries = fs::read_dir(&dir).unwrap_or_else(|error| panic!("{}: {error}", dir.display()));
    let mut replayed = 0;
    for entry in entries {
        let path = entry.expect("corpus entry").path();
        let data = fs::read(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
        let outcome = std::panic::catch_unwind(|| check(&data));
        assert!(outcome.is_ok(), "corpus input {} fails", path.display());
        replayed += 1;
    }
    assert!(replayed > 0, "empty corpus at {}", dir.display());
}

#[test]
fn app_send_corpus_passes_the_fuzz_checks() {
    replay("app_send", stompbox::fuzzing::app_send);
}

#[test]
fn ws_stream_corpus_passes_the_fuzz_checks() {
    replay("ws_stream", stompbox::fuzzing::ws_stream);
}
