//! Any bytes as a value read from etcd (see
//! `cocaine_core::cluster::etcd_fuzzing::check_etcd_record`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| cocaine_core::cluster::etcd_fuzzing::check_etcd_record(data));
