//! README.md and ARCHITECTURE.md list the operations the emulator serves exactly as
//! `device-defender-emulator --operations` prints them (one table in the code: `served.rs`).

use std::process::Command;

const BEGIN: &str = "<!-- operations:begin -->";
const END: &str = "<!-- operations:end -->";

fn listed_in(doc: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(doc);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let start = text.find(BEGIN).unwrap_or_else(|| panic!("{doc} has no {BEGIN} marker")) + BEGIN.len();
    let end = text[start..].find(END).unwrap_or_else(|| panic!("{doc} has no {END} marker after {BEGIN}")) + start;
    text[start..end].trim().to_owned()
}

#[test]
fn the_docs_list_the_operations_the_binary_serves() {
    let out = Command::new(env!("CARGO_BIN_EXE_device-defender-emulator")).arg("--operations").output().unwrap();
    assert!(out.status.success(), "--operations exits 0");
    let printed = String::from_utf8(out.stdout).unwrap();
    assert_eq!(printed, device_defender_emulator::served::markdown());
    for doc in ["README.md", "ARCHITECTURE.md"] {
        assert!(
            listed_in(doc) == printed.trim(),
            "{doc}'s operations list is out of date: replace what is between {BEGIN} and {END} with the output of \
             `cargo run -q -p device-defender-emulator -- --operations`"
        );
    }
}

#[test]
fn help_summarises_the_same_table() {
    let out = Command::new(env!("CARGO_BIN_EXE_device-defender-emulator")).arg("--help").output().unwrap();
    let help = String::from_utf8(out.stdout).unwrap();
    let count = device_defender_emulator::served::all().len();
    assert!(help.contains(&format!("Serves {count} operations")), "{help}");
    assert!(help.contains("DescribeAuditFinding") && help.contains("SendMessageBatch"), "{help}");
}
