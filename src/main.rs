//! The `ldv` binary: everything lives in the library's `cli` module.

fn main() -> std::process::ExitCode {
    ldv::cli::main()
}
