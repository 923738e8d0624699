//! The raw imports of module `"xdv"` (ABI v1, `docs/abi.md`) and the thin calls over them.
//!
//! Calling a foreign function is `unsafe` in Rust; this module is the only place the SDK does
//! it, and each call passes only pointers and lengths of live Rust slices.
#![allow(unsafe_code)]

#[link(wasm_import_module = "xdv")]
extern "C" {
    #[link_name = "abi_version"]
    fn xdv_abi_version() -> i32;
    #[link_name = "q_submit"]
    fn xdv_q_submit(ptr: *const u8, len: i32) -> i32;
    #[link_name = "phi_submit"]
    fn xdv_phi_submit(ptr: *const u8, len: i32) -> i32;
    #[link_name = "await_next"]
    fn xdv_await_next() -> i32;
    #[link_name = "result_len"]
    fn xdv_result_len(job: i32) -> i32;
    #[link_name = "result_read"]
    fn xdv_result_read(job: i32, ptr: *mut u8, cap: i32) -> i32;
    #[link_name = "job_release"]
    fn xdv_job_release(job: i32);
    #[link_name = "chan_send"]
    fn xdv_chan_send(chan: i32, ptr: *const u8, len: i32) -> i32;
    #[link_name = "chan_peek_len"]
    fn xdv_chan_peek_len(chan: i32) -> i32;
    #[link_name = "chan_recv"]
    fn xdv_chan_recv(chan: i32, ptr: *mut u8, cap: i32) -> i32;
    #[link_name = "log"]
    fn xdv_log(level: i32, ptr: *const u8, len: i32);
    #[link_name = "yield"]
    fn xdv_yield();
}

fn len(b: &[u8]) -> i32 {
    i32::try_from(b.len()).unwrap_or(i32::MAX)
}

pub(crate) fn abi_version() -> i32 {
    unsafe { xdv_abi_version() }
}
pub(crate) fn q_submit(req: &[u8]) -> i32 {
    unsafe { xdv_q_submit(req.as_ptr(), len(req)) }
}
pub(crate) fn phi_submit(req: &[u8]) -> i32 {
    unsafe { xdv_phi_submit(req.as_ptr(), len(req)) }
}
pub(crate) fn await_next() -> i32 {
    unsafe { xdv_await_next() }
}
pub(crate) fn result_len(job: i32) -> i32 {
    unsafe { xdv_result_len(job) }
}
pub(crate) fn result_read(job: i32, buf: &mut [u8]) -> i32 {
    unsafe { xdv_result_read(job, buf.as_mut_ptr(), len(buf)) }
}
pub(crate) fn job_release(job: i32) {
    unsafe { xdv_job_release(job) }
}
pub(crate) fn chan_send(chan: i32, msg: &[u8]) -> i32 {
    unsafe { xdv_chan_send(chan, msg.as_ptr(), len(msg)) }
}
pub(crate) fn chan_peek_len(chan: i32) -> i32 {
    unsafe { xdv_chan_peek_len(chan) }
}
pub(crate) fn chan_recv(chan: i32, buf: &mut [u8]) -> i32 {
    unsafe { xdv_chan_recv(chan, buf.as_mut_ptr(), len(buf)) }
}
pub(crate) fn log(level: i32, text: &[u8]) {
    unsafe { xdv_log(level, text.as_ptr(), len(text)) }
}
pub(crate) fn yield_now() {
    unsafe { xdv_yield() }
}
