//! The `ldv` binary: everything lives in the library's `cli` module.

// mimalloc reuses freed chunk buffers instead of returning them to the kernel and faulting fresh
// pages in for the next chunk (glibc's behaviour with its dynamic mmap threshold), and it keeps
// peak RSS close to the live data: put/get move every byte through multi-MiB buffers.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    ldv::cli::main()
}
