//! The runtime of the npm package's .wasm files (feature `npm-cdylib`): an allocator and a
//! panic handler for a build that links no std.
//!
//! std's allocator (dlmalloc) and its panic machinery, which formats every panic message
//! with its source location, made the light module about 8 KB larger gzipped (measured with
//! js/package/build.sh and wasm-opt 132). The core has no panics on input-driven paths. If
//! one happens anyway, the export traps with `RuntimeError: unreachable`, and memory it had
//! allocated is not freed.

#[global_allocator]
static ALLOCATOR: talc::wasm::WasmDynamicTalc = talc::wasm::new_wasm_dynamic_allocator();

#[panic_handler]
fn panic(_info: &core::panic::PanicInfo<'_>) -> ! {
    core::arch::wasm32::unreachable()
}
