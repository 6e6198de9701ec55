//! The `ldv` binary: everything lives in the library's `cli` module.

fn main() -> std::process::ExitCode {
    // Chunk buffers (32 KiB to 16 MiB) are allocated on one thread and freed on another. With
    // glibc's default, its mmap threshold grows after the first large free, so later buffers come
    // from per-thread heaps that keep freed memory: peak RSS of a 1 GiB get reached 250 MiB.
    // A fixed threshold maps every buffer above it and unmaps it when freed, so RSS follows the
    // data in flight. It is 1 MiB, not lower: format 2's chunks (32-512 KiB) then come from the
    // heaps, whose reuse is bounded by the chunks in flight, and skip a map, page faults and an
    // unmap each (on a 1 GiB put of 128 KiB chunks that was a third of its system time).
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter; called before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1024 * 1024);
    }
    ldv::cli::main()
}
