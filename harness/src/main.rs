//! The `harness` binary: everything is in the library ([`harness::main`]).

fn main() -> std::process::ExitCode {
    harness::main()
}
