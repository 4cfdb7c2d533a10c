fn main() -> std::process::ExitCode {
    wgsplit::cli::main()
}
