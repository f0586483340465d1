#![no_main]
//! Parse arbitrary bytes as a TCG2 event log in every format (and as a CCEL table
//! plus log area), then replay what parses: neither may panic.
use cocoon_measurements::eventlog::{EventLog, FormatChoice, CCEL_TABLE_LEN};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for choice in [FormatChoice::Auto, FormatChoice::Tpm, FormatChoice::Ccel] {
        if let Ok(log) = EventLog::parse(data, choice) {
            let _ = log.replay();
            let _ = log.measured_events();
        }
    }
    if data.len() >= CCEL_TABLE_LEN {
        let (table, area) = data.split_at(CCEL_TABLE_LEN);
        // Fix the ACPI checksum so the fuzzer reaches the log area behind it.
        let mut table = table.to_vec();
        let sum = table.iter().fold(0u8, |a, &b| a.wrapping_add(b));
        if let Some(c) = table.get_mut(9) {
            *c = c.wrapping_sub(sum);
        }
        if let Ok(log) = EventLog::parse_ccel(&table, area) {
            let _ = log.replay();
        }
    }
});
