//! The small unsafe layer over the operating system. Each `unsafe` block states why it is sound.

pub mod fault;
pub mod fork;
pub mod fs;
pub mod guard;
pub mod mmap;
pub mod mutex;
pub mod proc;
pub mod wake;
