//! Any JSON: import never panics, and a config that validates exports, re-imports
//! and exports to the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wgsplit::config;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(cfg) = config::from_json(text).and_then(config::check) {
        let json = config::to_json(&cfg);
        let again = config::check(config::from_json(&json).expect("export re-imports")).unwrap();
        assert_eq!(config::to_json(&again), json);
        assert_eq!(config::parse_valid(&config::to_uci(&cfg)).unwrap(), cfg);
    }
});
