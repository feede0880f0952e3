//! `parse_documents` on arbitrary text, as YAML and as a JSON stream: never panics;
//! documents are numbered 0..n in order and their text lies inside the input.

#![no_main]

use deployguard_offline::documents::parse_documents;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let range = text.as_ptr() as usize..=text.as_ptr() as usize + text.len();
    for json in [false, true] {
        let documents = parse_documents(text, json);
        for (position, document) in documents.iter().enumerate() {
            match document {
                Ok(document) => {
                    assert_eq!(document.index, position, "json={json}");
                    let start = document.text.as_ptr() as usize;
                    assert!(
                        range.contains(&start) && range.contains(&(start + document.text.len())),
                        "document text is not part of the input"
                    );
                }
                Err(error) => {
                    assert_eq!(error.index, position, "json={json}");
                    if json {
                        assert_eq!(
                            position + 1,
                            documents.len(),
                            "a JSON stream stops at its error"
                        );
                    }
                }
            }
        }
    }
});
