//! Any input: the parser must return (Ok or Err) without panicking or hanging, and what
//! it accepts must print to text that parses back to the same tree.
#![no_main]

use gatehouse_soql::{analyze, parse_with, print, IndexCatalog, ParseOptions, SelectivityOptions};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for apex in [false, true] {
        let options = ParseOptions { apex };
        if let Ok(q) = parse_with(text, options) {
            let printed = print(&q);
            let again = parse_with(&printed, options).expect("printed query must parse");
            assert_eq!(again, q, "round trip changed the tree: {printed}");
            let _ = analyze(&q, &IndexCatalog::standard(), &SelectivityOptions::default(), Some(20_000));
        }
    }
});
