//! Fake directory APIs on 127.0.0.1 that speak the real wire formats, for tests and benchmarks.
