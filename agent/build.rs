//! Release builds embed `ui/dist` (see `src/http/ui.rs`): rebuild when it
//! changes, including new files with new hashed names, which rust-embed alone
//! would not notice. Debug builds read it from disk and need nothing.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    if std::env::var("PROFILE").as_deref() == Ok("release") {
        let dist = std::path::Path::new("../ui/dist");
        // Until the UI is built, watch `ui/` so its first build is noticed.
        let watched = if dist.exists() { "../ui/dist" } else { "../ui" };
        println!("cargo:rerun-if-changed={watched}");
    }
}
