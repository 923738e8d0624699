//! Fuzzes the audit log verifier: any bytes give a verdict, never a panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = xdv_sdbm::log::verify(data, &xdv_sdbm::log::VerifyOptions::default());
    let _ = xdv_sdbm::log::verify(
        data,
        &xdv_sdbm::log::VerifyOptions {
            allow_unsealed: true,
            keep_entries: true,
            trusted_keys: None,
        },
    );
});
