//! Per-task counters and latency histograms.
