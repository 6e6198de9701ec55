//! The `ldv` binary: everything lives in the library's `cli` module.

fn main() -> std::process::ExitCode {
    // Chunk buffers (64 KiB to 16 MiB) are allocated on one thread and freed on another. With
    // glibc's default, its mmap threshold grows after the first large free, so later buffers come
    // from per-thread heaps that keep freed memory: peak RSS of a 1 GiB get reached 250 MiB.
    // A fixed threshold maps every such buffer and unmaps it when freed, so RSS follows the data
    // in flight (about 80 MiB for a 1 GiB put or get, 13 MiB verifying 64 KiB chunks) at the
    // price of page faults on fresh buffers.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter; called before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 64 * 1024);
    }
    ldv::cli::main()
}
