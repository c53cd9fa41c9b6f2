//! Property tests: no input makes the front ends panic.

use std::path::Path;

use proptest::prelude::*;

use super::super::*;
use super::support::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn front_ends_never_panic(text in "\\PC{0,200}") {
        let _ = dyn_yaml(&text);
        let _ = dyn_toml(&text);
        let _ = static_yaml(&text);
        let _ = parse_static(&text, Format::Toml, Path::new("t.toml"));
    }

    #[test]
    fn structured_input_never_panics(text in "([a-zA-Z]{1,8}(:|=| =|: )[ \\[\\]{}\"'a-z0-9.:/@`-]{0,12}\n {0,6}){0,12}") {
        let _ = dyn_yaml(&text);
        let _ = dyn_toml(&text);
        let _ = static_yaml(&text);
    }
}
