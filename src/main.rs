//! The `meshtrust` command-line tool: a thin layer over the library that parses arguments,
//! prints tables or JSON, and maps outcomes to exit codes (0 success, 1 a check failed,
//! 2 bad usage or unreadable input).
#![forbid(unsafe_code)]

mod cli;

fn main() -> std::process::ExitCode {
    cli::run()
}
