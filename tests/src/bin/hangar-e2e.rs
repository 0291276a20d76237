fn main() -> std::process::ExitCode {
    hangar_agent::cli::main()
}
