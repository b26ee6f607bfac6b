//! Hands freed heap memory back to the kernel after large requests, so that the agent's
//! resident size follows what it holds rather than the largest request it has served.
#![allow(unsafe_code)]

/// Messages (request or reply) at least this large are followed by a trim.
pub const LARGE_MESSAGE: usize = 256 * 1024;

/// After a message of `bytes`: when it was large, returns the free pages of every malloc arena
/// to the kernel (glibc `malloc_trim`; a few milliseconds, once per large message).
pub fn after_message(bytes: usize) {
    if bytes >= LARGE_MESSAGE {
        trim();
    }
}

/// Returns the free pages of every malloc arena to the kernel.
pub fn trim() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks the allocator's own free lists; it takes no pointers.
    unsafe {
        libc::malloc_trim(0);
    }
}
