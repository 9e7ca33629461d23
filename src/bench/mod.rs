//! Benchmark tools that users point at any election port, zkfle's or Java
//! ZooKeeper's (`zkfle bench ...`).

pub mod cli;
pub mod election;
pub mod kv;
pub mod notify;
pub mod workdir;
