//! Operations: one module per command. Each takes an open vault and plain settings, does the
//! work, and returns a serializable result; none prints or knows about the terminal.

pub mod chunk;
pub mod gc;
pub mod get;
pub mod info;
pub mod put;
pub mod rm;
pub mod verify;
