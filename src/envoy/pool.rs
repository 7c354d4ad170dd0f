//! The filter's allocator: small blocks come from free lists by size class, and
//! everything else from std's allocator (dlmalloc from wasi-libc).
//!
//! A request with a cached token allocates and frees about a dozen small blocks (the
//! header map, the decision, the claim header). In a profile of the size-tuned build,
//! dlmalloc took about a sixth of the filter's own time per request. Here a freed block
//! of at most [`MAX_CLASS_BYTES`] bytes goes to the front of the list of its class, and
//! the next allocation of that class takes it back in a few instructions.
//!
//! Classes are powers of two from 16 bytes up, so a block may be up to twice its request.
//! Blocks in a list stay there: the filter's linear memory never shrinks anyway, and a
//! class holds at most as many blocks as were live at once. The module is single-threaded
//! (wasm32-wasip1 without threads), so the lists need no lock.
#![allow(unsafe_code)]

use core::alloc::{GlobalAlloc, Layout};
use core::cell::UnsafeCell;
use core::ptr::null_mut;
use std::alloc::System;

/// Size of the smallest class; a free block holds the link to the next one.
const MIN_CLASS_SHIFT: u32 = 4;

/// Number of classes: 16, 32, …, 2048 bytes.
const CLASSES: usize = 8;

/// Size of the largest class, in bytes.
pub const MAX_CLASS_BYTES: usize = 1 << (MIN_CLASS_SHIFT as usize + CLASSES - 1);

/// Alignment of every block of a class, the one std's allocator gives `malloc` blocks.
const CLASS_ALIGN: usize = 8;

/// Returns the class of a layout, or `None` when std's allocator serves it.
fn class(layout: Layout) -> Option<usize> {
    if layout.size() > MAX_CLASS_BYTES || layout.align() > CLASS_ALIGN {
        return None;
    }
    let rounded = layout.size().max(1 << MIN_CLASS_SHIFT).next_power_of_two();
    Some((rounded.trailing_zeros() - MIN_CLASS_SHIFT) as usize)
}

/// Returns the layout in which std's allocator holds the blocks of class `class`.
fn class_layout(class: usize) -> Layout {
    // The size is a power of two up to MAX_CLASS_BYTES and the alignment 8: always valid.
    Layout::from_size_align(1 << (class + MIN_CLASS_SHIFT as usize), CLASS_ALIGN).unwrap_or(Layout::new::<u64>())
}

/// Free lists of small blocks in front of std's allocator.
pub struct Pool {
    /// The first free block of each class. Each free block starts with a pointer to the
    /// next one.
    heads: UnsafeCell<[*mut u8; CLASSES]>,
}

// SAFETY: the pool is the allocator only of wasm builds without the atomics feature,
// which run on one thread.
unsafe impl Sync for Pool {}

impl Pool {
    pub const fn new() -> Self {
        Self { heads: UnsafeCell::new([null_mut(); CLASSES]) }
    }
}

impl Default for Pool {
    fn default() -> Self {
        Self::new()
    }
}

// The functions are not inlined: at opt-level 3, inlining them into every allocation site
// made the filter 68 KB larger.
// SAFETY: every block handed out is either a whole block of its class from std's
// allocator (at least the requested size, aligned to 8, which the layout does not exceed)
// or a block std's allocator returned for the layout itself. A block goes back to the list
// of the class its layout names, which is the class it was taken from.
unsafe impl GlobalAlloc for Pool {
    #[inline(never)]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let Some(class) = class(layout) else {
            // SAFETY: the caller's layout, passed on.
            return unsafe { System.alloc(layout) };
        };
        // SAFETY: one thread, and no reference into `heads` outlives this call.
        let heads = unsafe { &mut *self.heads.get() };
        let Some(head) = heads.get_mut(class) else { return null_mut() };
        let block = *head;
        if block.is_null() {
            // SAFETY: a valid layout of non-zero size.
            return unsafe { System.alloc(class_layout(class)) };
        }
        // SAFETY: a free block of the class starts with the link that `dealloc` wrote.
        *head = unsafe { block.cast::<*mut u8>().read() };
        block
    }

    #[inline(never)]
    unsafe fn dealloc(&self, block: *mut u8, layout: Layout) {
        let Some(class) = class(layout) else {
            // SAFETY: the block came from std's allocator with this layout.
            return unsafe { System.dealloc(block, layout) };
        };
        // SAFETY: one thread, and no reference into `heads` outlives this call.
        let heads = unsafe { &mut *self.heads.get() };
        if let Some(head) = heads.get_mut(class) {
            // SAFETY: the block is at least 16 bytes, aligned to 8, and no longer used.
            unsafe { block.cast::<*mut u8>().write(*head) };
            *head = block;
        }
    }

    #[inline(never)]
    unsafe fn realloc(&self, block: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller guarantees that a layout of `new_size` is valid.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        match (class(layout), class(new_layout)) {
            (Some(old), Some(new)) if old == new => block,
            // SAFETY: a block std's allocator holds with this layout.
            (None, None) => unsafe { System.realloc(block, layout, new_size) },
            _ => {
                // SAFETY: as for `alloc` and `dealloc`; the two blocks do not overlap.
                unsafe {
                    let moved = self.alloc(new_layout);
                    if !moved.is_null() {
                        core::ptr::copy_nonoverlapping(block, moved, layout.size().min(new_size));
                        self.dealloc(block, layout);
                    }
                    moved
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_cover_sizes_up_to_the_largest() {
        let layout = |size| Layout::from_size_align(size, 1).unwrap();
        assert_eq!(class(layout(1)), Some(0));
        assert_eq!(class(layout(16)), Some(0));
        assert_eq!(class(layout(17)), Some(1));
        assert_eq!(class(layout(MAX_CLASS_BYTES)), Some(CLASSES - 1));
        assert_eq!(class(layout(MAX_CLASS_BYTES + 1)), None);
        assert_eq!(class(Layout::from_size_align(64, 16).unwrap()), None);
        for size in 1..=MAX_CLASS_BYTES {
            let class = class(layout(size)).unwrap();
            assert!(class_layout(class).size() >= size);
            assert!(class == 0 || class_layout(class - 1).size() < size, "{size} is in a larger class than needed");
        }
    }

    #[test]
    fn freed_block_is_reused_first() {
        let pool = Pool::new();
        let layout = Layout::from_size_align(40, 8).unwrap();
        // SAFETY: blocks are used within their layouts and freed once.
        unsafe {
            let first = pool.alloc(layout);
            let second = pool.alloc(layout);
            assert!(!first.is_null());
            assert!(!second.is_null());
            assert_ne!(first, second);
            first.write_bytes(0xaa, 40);
            second.write_bytes(0xbb, 40);
            pool.dealloc(first, layout);
            let again = pool.alloc(Layout::from_size_align(33, 4).unwrap());
            assert_eq!(again, first, "a block of the same class comes back first");
            assert_eq!(second.read(), 0xbb);
            let grown = pool.realloc(again, Layout::from_size_align(33, 4).unwrap(), 64);
            assert_eq!(grown, again, "growth within the class keeps the block");
            grown.write_bytes(0xcc, 64);
            let moved = pool.realloc(grown, Layout::from_size_align(64, 4).unwrap(), 5000);
            assert!(!moved.is_null());
            assert_ne!(moved, grown);
            assert_eq!(moved.add(63).read(), 0xcc);
            let back = pool.realloc(moved, Layout::from_size_align(5000, 4).unwrap(), 20);
            assert_eq!(back.add(19).read(), 0xcc);
            pool.dealloc(back, Layout::from_size_align(20, 4).unwrap());
            pool.dealloc(second, layout);
        }
    }
}
