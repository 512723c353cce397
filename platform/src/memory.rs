//! How the process hands memory back. A hostile burst (bodies of a megabyte, documents of
//! 100,000 tokens, fifty at a time) makes buffers far larger than any normal request's; once
//! the burst is refused, the process should shrink back to where it was.
//!
//! glibc's allocator keeps freed memory in its arenas for reuse and returns only what is free
//! at the top of a heap (measured: 29 MiB at start, 90-140 MiB after the hostile-load
//! bursts, never lower). Making large buffers mappings of their own (a fixed
//! `M_MMAP_THRESHOLD`) returned them, but doubled the CPU of refusing a 1 MB document
//! (page faults and zeroing for every buffer). Instead a thread asks the allocator every
//! [`TRIM_EVERY`] to give back the free pages it holds (`malloc_trim`): one pass over the
//! arenas, microseconds when there is nothing to return. (The standalone `gateway` binary
//! allocates with mimalloc, which returns freed memory by itself, and does not need this.)

use std::time::Duration;

/// How often free memory is handed back.
pub const TRIM_EVERY: Duration = Duration::from_secs(2);

/// Starts the thread that hands free memory back to the system every [`TRIM_EVERY`], for
/// the life of the process. Call once, from `main`. Does nothing where the allocator is not
/// glibc's.
pub fn return_free_memory_to_the_system() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let started = std::thread::Builder::new()
            .name("memory-trim".to_owned())
            .spawn(|| {
                loop {
                    std::thread::sleep(TRIM_EVERY);
                    // SAFETY: malloc_trim takes each arena's own lock; it only releases
                    // pages that hold no allocation.
                    unsafe {
                        libc::malloc_trim(0);
                    }
                }
            });
        if let Err(error) = started {
            tracing::warn!(%error, "cannot start the memory trim thread");
        }
    }
}
