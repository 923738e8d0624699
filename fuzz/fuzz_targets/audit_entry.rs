//! Fuzzes the canonical entry decoder: whatever decodes re-encodes to the same bytes.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(e) = xdv_sdbm::entry::Entry::decode(data) {
        assert_eq!(e.encode().expect("a decoded entry encodes"), data);
    }
});
