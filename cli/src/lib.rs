//! The `hark` command's parts, as a library so that its tests can use them too.

pub mod bridge;
pub mod format;
pub mod json;
pub mod listen;
pub mod serve;
pub mod shell;
pub mod stat;
pub mod tcn;
