//! RA-TLS: a worker's TLS certificate that carries its attestation.
//!
//! The worker (guest agent) generates its TLS key inside the TD, puts the TDX quote,
//! the REPORTDATA claims (which commit to that very key), the TEE kind and optionally
//! the quote's collateral into non-critical X.509 extensions of its self-signed
//! certificate ([`RaTlsEvidence::to_extensions`]). A client verifies the certificate
//! ([`verify::verify_certificate`], or the rustls [`RaTlsServerVerifier`] during the
//! handshake), then asks `/attestation?nonce=..` for a fresh quote over its nonce and
//! the runtime (RTMR3) event log ([`AttestationResponse`],
//! [`verify::verify_attestation`]).
//!
//! Formats are specified in `measurements/README.md` ("RA-TLS") and the project's
//! interface contract, sections 2, 3 and 5.

mod cert;
pub mod client;
mod response;
mod runtime;
mod server;
pub mod verify;

pub use cert::{RaTlsError, RaTlsEvidence, TeeKind, MAX_CERT_BYTES};
pub use client::{connect_and_attest, ConnectError, ConnectReport, Target};
pub use response::{AttestationResponse, BootLogFormat, ResponseError, RESPONSE_VERSION};
pub use runtime::{
    replay, verify_log, RuntimeEvent, RuntimeLogError, EVENT_CONFIG, EVENT_ENGINE_CMDLINE,
    EVENT_MODEL, MAX_RUNTIME_EVENTS, RUNTIME_EVENT_LABEL,
};
pub use server::{RaTlsServerVerifier, RaTlsVerifyError};
pub use verify::{
    verify_attestation, verify_certificate, verify_certificate_at, AttestationReport,
    CertificateReport, CollateralSource, RaTlsVerifierConfig,
};

/// The OIDs of the RA-TLS certificate extensions.
///
/// ARC is the UUID `82b89d14-dab7-4751-8e0c-3bf2f2ea33db` placed under Microsoft's
/// arc for GUID-derived OIDs, `1.2.840.113556.1.8000.2554`, split into 16, 16, 16,
/// 16, 16, 24 and 24-bit components (the documented `aaaa.bbbb.cccc.dddd.eeee.ffffff.
/// gggggg` form). The same UUID as an X.667 `2.25.<128-bit integer>` arc cannot be
/// used: rcgen (through yasna) and const-oid store OID components as 64- and 32-bit
/// integers, so neither could write or read it.
pub mod oid {
    /// `1.2.840.113556.1.8000.2554.33464.40212.55991.18257.36364.3928818.15348699`.
    pub const ARC: &[u64] = &[
        1, 2, 840, 113556, 1, 8000, 2554, 33464, 40212, 55991, 18257, 36364, 3928818, 15348699,
    ];
    /// `ARC.1`: OCTET STRING holding the raw TDX quote (v4).
    pub const QUOTE: &[u64] = &[
        1, 2, 840, 113556, 1, 8000, 2554, 33464, 40212, 55991, 18257, 36364, 3928818, 15348699, 1,
    ];
    /// `ARC.2`: OCTET STRING holding `Claims::encode()` (no nonce).
    pub const CLAIMS: &[u64] = &[
        1, 2, 840, 113556, 1, 8000, 2554, 33464, 40212, 55991, 18257, 36364, 3928818, 15348699, 2,
    ];
    /// `ARC.3`: OCTET STRING holding the TEE kind, UTF-8 `tdx` or `sim`.
    pub const TEE: &[u64] = &[
        1, 2, 840, 113556, 1, 8000, 2554, 33464, 40212, 55991, 18257, 36364, 3928818, 15348699, 3,
    ];
    /// `ARC.4` (optional): OCTET STRING holding dcap-qvl `QuoteCollateralV3` JSON.
    pub const COLLATERAL: &[u64] = &[
        1, 2, 840, 113556, 1, 8000, 2554, 33464, 40212, 55991, 18257, 36364, 3928818, 15348699, 4,
    ];

    /// Dotted form of an OID given as components.
    pub fn dotted(arcs: &[u64]) -> String {
        arcs.iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join(".")
    }
}
