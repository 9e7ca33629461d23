//! Benchmark tools that users point at any election port, zkfle's or Java
//! ZooKeeper's (`zkfle bench ...`).

pub mod certs;
pub mod chart;
pub mod cli;
pub mod election;
pub mod ensemble;
pub mod kv;
pub mod notify;
pub mod workdir;
