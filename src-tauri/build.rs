fn main() {
    // The config lives at the workspace root (see PLATFORM.md), so both this
    // and `generate_context!` name it.
    tauri_build::try_build(tauri_build::Attributes::new().config_path("../tauri.conf.json"))
        .expect("tauri build script");
}
