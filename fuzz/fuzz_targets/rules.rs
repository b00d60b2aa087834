#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| careledger_fuzz_harness::rules::fuzz(data));
