// The shared library is installed as libhark.so.<version> with the links libhark.so.0 and
// libhark.so, as libpq's libpq.so.5: its soname is libhark.so.0, so that programs linked with
// `-lhark` record `libhark.so.0` (not cargo's `libhark_ffi.so`) and keep working across releases
// that keep the ABI. The 0 changes only with an incompatible change of include/hark.h.
fn main() {
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libhark.so.0");
    println!("cargo:rerun-if-changed=build.rs");
}
