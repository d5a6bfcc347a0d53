// The shared library is installed as libhark.so; give it that soname so that programs linked with
// `-lhark` record the installed name rather than cargo's `libhark_ffi.so`.
fn main() {
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libhark.so");
    println!("cargo:rerun-if-changed=build.rs");
}
