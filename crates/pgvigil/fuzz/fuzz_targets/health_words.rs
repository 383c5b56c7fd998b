//! check_pg_health's `--check` splitting: words or a reason, and words
//! quoted back the way a shell quotes them split into the same words.
#![no_main]
use libfuzzer_sys::fuzz_target;
use pgvigil::checks::health::split_words;

fuzz_target!(|text: &str| {
    let Ok(words) = split_words(text) else {
        return;
    };
    let quoted: Vec<String> = words
        .iter()
        .map(|w| format!("'{}'", w.replace('\'', "'\\''")))
        .collect();
    assert_eq!(split_words(&quoted.join(" ")), Ok(words), "{text:?}");
});
