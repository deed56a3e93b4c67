//! Replays every input of the committed fuzz corpus through the fuzz target's own checks, so
//! what the fuzzer once found stays fixed under a plain `cargo test`.

use std::fs;
use std::path::Path;

#[test]
fn fuzz_corpus_inputs_pass_the_fuzz_checks() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/decode");
    let entries = fs::read_dir(&dir).unwrap_or_else(|error| panic!("{}: {error}", dir.display()));
    let mut replayed = 0;
    for entry in entries {
        let path = entry.expect("corpus entry").path();
        let data = fs::read(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
        let outcome = std::panic::catch_unwind(|| stomp_codec::fuzzing::check(&data));
        assert!(outcome.is_ok(), "corpus input {} fails", path.display());
        replayed += 1;
    }
    assert!(replayed > 0, "empty corpus at {}", dir.display());
}
