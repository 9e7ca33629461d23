//! The `zkfle` binary: `run`, `ensemble`, `bench`, `sim`.

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "zkfle",
    version,
    about = "ZooKeeper's leader election, in Rust"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Benchmarks against any election port (zkfle or Java ZooKeeper).
    Bench(zkfle::bench::cli::BenchArgs),
}

fn main() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let cli = Cli::parse();
    let code = match cli.command {
        Command::Bench(args) => zkfle::bench::cli::main(args),
    };
    std::process::exit(code);
}
