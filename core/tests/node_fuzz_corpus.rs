//! Replays the `node_inputs` fuzz corpus, and random byte strings, through the fuzz target's
//! checks (`cocaine_core::node::fuzzing::check_node_inputs`).

use std::path::Path;
use std::time::Instant;

use cocaine_core::node::fuzzing::check_node_inputs;
use proptest::prelude::*;

#[test]
fn the_committed_corpus_holds() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/node_inputs");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|entry| entry.expect("a bad directory entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no corpus in {}", dir.display());
    let start = Instant::now();
    for file in files {
        let data = std::fs::read(&file).expect("cannot read a corpus file");
        check_node_inputs(start, &data);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn random_input_sequences_hold(data in proptest::collection::vec(any::<u8>(), 0..1500)) {
        check_node_inputs(Instant::now(), &data);
    }
}
