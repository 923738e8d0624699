//! Helpers shared by the runtime's integration tests.

/// A guest module, in WebAssembly text, with WASI's `fd_write`, `xdv.chan_send`, `xdv.chan_recv`
/// and `xdv.yield`, `data` at address 1024, and `body` as its `_start`.
pub fn ipc_module(data: &str, body: &str) -> Vec<u8> {
    format!(
        r#"(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "xdv" "chan_send" (func $chan_send (param i32 i32 i32) (result i32)))
  (import "xdv" "chan_recv" (func $chan_recv (param i32 i32 i32) (result i32)))
  (import "xdv" "yield" (func $yield))
  (memory (export "memory") 1)
  (data (i32.const 1024) "{data}")
  (func (export "_start") (local $n i32) (local $len i32)
{body}))"#
    )
    .into_bytes()
}
