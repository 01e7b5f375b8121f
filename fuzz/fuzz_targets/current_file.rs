#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    lightning_db::testing::fuzzing::decode_current(data);
});
