//! Bounds-checked access to guest memory from host calls, and allocation in the guest.
//!
//! Every pointer the guest passes is checked against the current memory size. A bad
//! pointer makes the host call return `InvalidMemoryAccess` (or WASI `FAULT`), never a
//! host panic.

use wasmtime::Caller;

use crate::abi::ALLOWED_DURING_ALLOCATION;
use crate::state::HostState;

/// Reads `len` bytes at `ptr`, or `None` if the range is outside memory.
pub(crate) fn read(caller: &Caller<'_, HostState>, ptr: i32, len: i32) -> Option<Vec<u8>> {
    let memory = caller.data().memory?;
    let data = memory.data(caller);
    let start = ptr as u32 as usize;
    let end = start.checked_add(len as u32 as usize)?;
    data.get(start..end).map(<[u8]>::to_vec)
}

/// Writes `bytes` at `ptr`; returns false if the range is outside memory.
pub(crate) fn write(caller: &mut Caller<'_, HostState>, ptr: u32, bytes: &[u8]) -> bool {
    let Some(memory) = caller.data().memory else {
        return false;
    };
    let data = memory.data_mut(caller);
    let start = ptr as usize;
    let Some(end) = start.checked_add(bytes.len()) else {
        return false;
    };
    match data.get_mut(start..end) {
        Some(target) => {
            target.copy_from_slice(bytes);
            true
        }
        None => false,
    }
}

pub(crate) fn write_u32(caller: &mut Caller<'_, HostState>, ptr: i32, value: u32) -> bool {
    write(caller, ptr as u32, &value.to_le_bytes())
}

pub(crate) fn write_u64(caller: &mut Caller<'_, HostState>, ptr: i32, value: u64) -> bool {
    write(caller, ptr as u32, &value.to_le_bytes())
}

/// Copies `bytes` into memory allocated by the guest and stores its address and size at
/// `ptr_ptr` and `size_ptr` (cpp-host `WasmBase::copyToPointerSize`). An empty value is
/// reported as address 0, size 0 without calling the allocator.
///
/// Returns `Ok(false)` when the allocator returns 0 or an address outside memory, or a
/// destination pointer is invalid.
///
/// # Errors
///
/// Returns the trap if the guest allocator traps.
pub(crate) fn copy_to_guest(
    caller: &mut Caller<'_, HostState>,
    bytes: &[u8],
    ptr_ptr: i32,
    size_ptr: i32,
) -> wasmtime::Result<bool> {
    let mut address = 0;
    if !bytes.is_empty() {
        match allocate(caller, bytes.len())? {
            Some(allocated) => address = allocated,
            None => return Ok(false),
        }
        if !write(caller, address, bytes) {
            return Ok(false);
        }
    }
    let size = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
    Ok(write_u32(caller, ptr_ptr, address) && write_u32(caller, size_ptr, size))
}

/// Calls the guest allocator (`malloc`, else `proxy_on_memory_allocate`) for `size` bytes.
/// While it runs, the guest may only log and read the clock, and the acting context is the
/// VM context 0, as in cpp-host `WasmBase::allocMemory`.
fn allocate(caller: &mut Caller<'_, HostState>, size: usize) -> wasmtime::Result<Option<u32>> {
    let Ok(size_arg) = i32::try_from(size) else {
        return Ok(None);
    };
    // Taken out for the call and put back after it, rather than cloned: a clone of a
    // typed function copies its registered type, which cost more than the call.
    let Some(allocator) = caller.data_mut().allocator.take() else {
        return Ok(None);
    };
    let state = caller.data_mut();
    let saved_restricted = state.restricted.replace(ALLOWED_DURING_ALLOCATION);
    let saved_context = (state.current_context, state.effective_context);
    state.current_context = 0;
    state.effective_context = 0;
    let started = state.host_calls.enabled.then(std::time::Instant::now);
    let result = allocator.call(&mut *caller, size_arg);
    let state = caller.data_mut();
    state.allocator = Some(allocator);
    if let Some(started) = started {
        state.host_calls.nested_guest += started.elapsed();
    }
    state.restricted = saved_restricted;
    (state.current_context, state.effective_context) = saved_context;
    let address = result? as u32;
    if address == 0 {
        return Ok(None);
    }
    let Some(memory) = caller.data().memory else {
        return Ok(None);
    };
    let fits = (address as usize)
        .checked_add(size)
        .is_some_and(|end| end <= memory.data_size(&*caller));
    Ok(fits.then_some(address))
}
