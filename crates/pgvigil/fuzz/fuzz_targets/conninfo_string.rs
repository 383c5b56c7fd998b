//! Connection strings and URIs as `-d` takes them (`key=value …`,
//! `postgresql://…`): keywords or a usage error, never a panic; a value
//! parsed back from its own quoting is the same value.
#![no_main]
use libfuzzer_sys::fuzz_target;
use pgvigil::conninfo::keywords;

fuzz_target!(|text: &str| {
    let Ok(params) = keywords::parse(text) else {
        return;
    };
    // Every keyword that parsed is one libpq knows; a secret stays hidden.
    for (keyword, _) in keywords::KEYWORDS {
        if let Some(value) = params.get(keyword) {
            // Another secret prints the same: the secret itself never shows.
            if keywords::is_secret(keyword) {
                let mut other = params.clone();
                other.set(keyword, "another").unwrap();
                assert_eq!(format!("{params:?}"), format!("{other:?}"));
            }
            let quoted = format!(
                "{keyword}='{}'",
                value.replace('\\', "\\\\").replace('\'', "\\'")
            );
            let again = keywords::parse_key_values(&quoted).expect("own quoting parses");
            assert_eq!(again.get(keyword), Some(value), "{quoted:?}");
        }
    }
});
