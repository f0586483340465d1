#![no_main]
// PE headers, Authenticode ranges and the UKI section lookup (systemd-stub 257 rules,
// cmdline decoding, kernel headers) on arbitrary bytes: must return errors, never panic.
use cocoon_measurements::pe::{authenticode_sha384, PeImage};
use cocoon_measurements::uki::{cmdline, Uki};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = PeImage::headers_len(data);
    if let Ok(pe) = PeImage::parse(data, data.len() as u64) {
        let _ = pe.authenticode_ranges();
        let _ = authenticode_sha384(data);
    }
    if let Ok(uki) = Uki::from_source(data, "fuzz") {
        let _ = uki.cmdline();
        let _ = uki.uname();
        let _ = uki.kernel.pe.authenticode_ranges();
    }
    let _ = cmdline::load_options(data);
});
