//! Bytes → the daemon's config parser and the saved rules parser: a value or an error, never a
//! panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tcpreset::config::Config;
use tcpreset::saved::from_json;
use tcpreset::time::Instant;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(config) = Config::parse("fuzz.toml", text) {
        let _ = (config.log_format(), config.flow_idle());
    }
    let now = Instant::from_micros(1_700_000_000_000_000);
    let _ = from_json(text, now);
});
