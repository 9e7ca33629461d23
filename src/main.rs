//! The `zkfle` binary: `run`, `ensemble`, `bench`, `sim`.

fn main() {
    eprintln!("zkfle: no commands yet");
    std::process::exit(2);
}
