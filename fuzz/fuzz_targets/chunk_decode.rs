#![no_main]
// Placeholder: the owning helper replaces this with the real target.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = data;
});
