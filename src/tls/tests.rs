//! Unit tests of the TLS context (certificates made with rcgen).
