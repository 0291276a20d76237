fn main() -> std::process::ExitCode {
    hangar_app::main()
}
