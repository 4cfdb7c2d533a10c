//! Any text: parsing and validation never panic, and whatever validates survives
//! the UCI round trip unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wgsplit::config;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(cfg) = config::parse_valid(text) {
        let again = config::parse_valid(&config::to_uci(&cfg)).expect("written config re-reads");
        assert_eq!(again, cfg);
    }
});
