//! COCOON worker guest agent (library side; the binary is `cocoon-agent`).

pub mod accounting;
pub mod ledger;
pub mod ton;
