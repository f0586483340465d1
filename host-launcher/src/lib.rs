//! COCOON worker host launcher (library side; the binary is `cocoon-host`).
