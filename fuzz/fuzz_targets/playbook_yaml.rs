//! Bytes → the playbook YAML parser and its checks: a playbook or problems, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tcpreset::playbook::spec::check::parse_playbook;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(problems) = parse_playbook(text) {
        assert!(!problems.is_empty());
    }
});
