//! COCOON worker guest agent (library side; the binary is `cocoon-agent`).
