#![no_main]
//! TDVF metadata parsing and MRTD computation on arbitrary bytes: must return an
//! error or a value, never panic, and the work must stay bounded.
use cocoon_measurements::mrtd::{self, PageOrder};
use cocoon_measurements::tdvf;
use libfuzzer_sys::fuzz_target;

/// Skip hashing when the metadata asks for more than this much memory: the library's
/// own caps (GiBs) are right for real images but too slow for a fuzzing iteration.
const FUZZ_MAX_BYTES: u64 = 16 << 20;

fuzz_target!(|data: &[u8]| {
    let _ = tdvf::parse_table(data);
    let Ok(meta) = tdvf::parse(data) else {
        return;
    };
    // Invariants the parser promises the MRTD computation.
    for s in &meta.sections {
        assert_eq!(s.memory_address % tdvf::PAGE_SIZE, 0);
        assert_eq!(s.memory_data_size % tdvf::PAGE_SIZE, 0);
        assert!(u64::from(s.raw_data_size) <= s.memory_data_size);
        if s.raw_data_size != 0 {
            let end = u64::from(s.data_offset) + u64::from(s.raw_data_size);
            assert!(end <= data.len() as u64);
        }
    }
    if meta.added_bytes() > FUZZ_MAX_BYTES {
        return;
    }
    for order in PageOrder::ALL {
        let _ = mrtd::compute_mrtd(data, &meta, order);
    }
    let _ = mrtd::mrtd_from_bytes(data, PageOrder::PageByPage);
});
