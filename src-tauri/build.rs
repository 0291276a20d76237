fn main() {
    // The config sits beside this crate's Cargo.toml, where the Tauri CLI
    // (bundling) requires it.
    tauri_build::build();
}
