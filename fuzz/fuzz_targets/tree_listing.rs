#![no_main]
// The body lives in the library (src/fuzz.rs), shared with the mutation test in tests/fuzz.rs.
libfuzzer_sys::fuzz_target!(|data: &[u8]| ldv::fuzz::tree_listing(data));
