//! Legacy TDX quote path: `/dev/tdx_guest` ioctls, for kernels without configfs-tsm.
//!
//! Two steps (linux/tdx-guest.h of TDX-enabled distribution kernels before 6.7):
//! `TDX_CMD_GET_REPORT0` (`_IOWR('T', 1, struct tdx_report_req)`) turns REPORTDATA into
//! a 1024-byte TDREPORT, then `TDX_CMD_GET_QUOTE` (`_IOR('T', 4, struct tdx_quote_req)`)
//! hands a buffer to the host's quoting service (QGS) through the GetQuote TDVMCALL.
//! The buffer is a `tdx_quote_hdr` (version u64, status u64, in_len u32, out_len u32)
//! followed by a 4-byte big-endian length and a QGS message (Intel DCAP
//! `qgs_msg_lib.h`: header {major u16, minor u16, type u32, size u32, error_code u32},
//! then GET_QUOTE_REQ {report_size u32, id_list_size u32, report} or GET_QUOTE_RESP
//! {selected_id_size u32, quote_size u32, id, quote}); all QGS integers little-endian.
#![deny(clippy::arithmetic_side_effects)]

use std::os::fd::AsRawFd as _;
use std::path::Path;

use cocoon_measurements::codec::{ParseError, Reader};

use crate::tee::TeeError;

const TDX_REPORT_LEN: usize = 1024;
/// Room for the QGS response; quotes with a certification chain are about 5 KiB.
const QUOTE_BUF_LEN: usize = 16 * 1024;
const HDR_LEN: usize = 24;
const QGS_HEADER_LEN: u32 = 16;
const QGS_MSG_GET_QUOTE_REQ: u32 = 0;
const QGS_MSG_GET_QUOTE_RESP: u32 = 1;

#[repr(C)]
struct TdxReportReq {
    reportdata: [u8; 64],
    tdreport: [u8; TDX_REPORT_LEN],
}

#[repr(C)]
struct TdxQuoteReq {
    buf: u64,
    len: u64,
}

nix::ioctl_readwrite!(tdx_get_report0, b'T', 1, TdxReportReq);
nix::ioctl_read!(tdx_get_quote, b'T', 4, TdxQuoteReq);

/// The GET_QUOTE buffer for a TDREPORT, `QUOTE_BUF_LEN` bytes long.
pub fn build_quote_request(tdreport: &[u8; TDX_REPORT_LEN]) -> Vec<u8> {
    // 16-byte QGS header + report_size + id_list_size + report.
    const QGS_LEN: u32 = QGS_HEADER_LEN + 8 + TDX_REPORT_LEN as u32;
    let qgs_len = QGS_LEN;
    let mut buf = Vec::with_capacity(QUOTE_BUF_LEN);
    buf.extend_from_slice(&1u64.to_le_bytes()); // version
    buf.extend_from_slice(&0u64.to_le_bytes()); // status, set by the VMM
    buf.extend_from_slice(&(QGS_LEN + 4).to_le_bytes()); // in_len: length prefix + message
    buf.extend_from_slice(&0u32.to_le_bytes()); // out_len, set by the VMM
    buf.extend_from_slice(&qgs_len.to_be_bytes());
    buf.extend_from_slice(&1u16.to_le_bytes()); // QGS major version
    buf.extend_from_slice(&0u16.to_le_bytes()); // minor
    buf.extend_from_slice(&QGS_MSG_GET_QUOTE_REQ.to_le_bytes());
    buf.extend_from_slice(&qgs_len.to_le_bytes());
    buf.extend_from_slice(&0u32.to_le_bytes()); // error_code
    buf.extend_from_slice(&(TDX_REPORT_LEN as u32).to_le_bytes());
    buf.extend_from_slice(&0u32.to_le_bytes()); // id_list_size
    buf.extend_from_slice(tdreport);
    buf.resize(QUOTE_BUF_LEN, 0);
    buf
}

/// The quote inside a GET_QUOTE buffer the VMM filled in.
pub fn parse_quote_response(buf: &[u8]) -> Result<Vec<u8>, ParseError> {
    let mut r = Reader::new(buf);
    let _version = r.u64_le("tdx_quote_hdr.version")?;
    let status_at = r.offset();
    let status = r.u64_le("tdx_quote_hdr.status")?;
    if status != 0 {
        return Err(ParseError::invalid(
            "tdx_quote_hdr.status",
            status_at,
            format!("{status:#x} (0 = success)"),
        ));
    }
    let _in_len = r.u32_le("tdx_quote_hdr.in_len")?;
    let out_len = r.len_u32_le(
        "tdx_quote_hdr.out_len",
        QUOTE_BUF_LEN.saturating_sub(HDR_LEN),
    )?;
    let mut data = r.sub(out_len, "tdx_quote_hdr.data")?;
    let msg_len_at = data.offset();
    let msg_len = data.u32_be("qgs message length")? as usize;
    let mut msg = data.sub(msg_len, "qgs message")?;
    let _major = msg.u16_le("qgs header.major_version")?;
    let _minor = msg.u16_le("qgs header.minor_version")?;
    let type_at = msg.offset();
    let kind = msg.u32_le("qgs header.type")?;
    if kind != QGS_MSG_GET_QUOTE_RESP {
        return Err(ParseError::invalid(
            "qgs header.type",
            type_at,
            format!("{kind} (expected GET_QUOTE_RESP = 1)"),
        ));
    }
    let _size = msg.u32_le("qgs header.size")?;
    let err_at = msg.offset();
    let error_code = msg.u32_le("qgs header.error_code")?;
    if error_code != 0 {
        return Err(ParseError::invalid(
            "qgs header.error_code",
            err_at,
            format!("{error_code:#x}"),
        ));
    }
    let id_len = msg.len_u32_le("qgs selected_id_size", msg_len)?;
    let quote_len = msg.len_u32_le("qgs quote_size", msg_len)?;
    msg.skip(id_len, "qgs selected id")?;
    let quote = msg.take(quote_len, "qgs quote")?;
    if quote.is_empty() {
        return Err(ParseError::invalid("qgs quote_size", msg_len_at, "0"));
    }
    Ok(quote.to_vec())
}

/// Both ioctls against `device`.
pub(super) fn get_quote(device: &Path, report_data: &[u8; 64]) -> Result<Vec<u8>, TeeError> {
    let err = |why: String| TeeError::Ioctl {
        path: device.to_path_buf(),
        why,
    };
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(device)
        .map_err(|e| TeeError::io(device, e))?;
    let mut req = TdxReportReq {
        reportdata: *report_data,
        tdreport: [0u8; TDX_REPORT_LEN],
    };
    // SAFETY: `req` is a live, correctly sized `repr(C)` struct matching the kernel's
    // `struct tdx_report_req`; the kernel writes only within it.
    unsafe { tdx_get_report0(file.as_raw_fd(), &mut req) }
        .map_err(|e| err(format!("TDX_CMD_GET_REPORT0: {e}")))?;
    let mut buf = build_quote_request(&req.tdreport);
    let mut qreq = TdxQuoteReq {
        buf: buf.as_mut_ptr() as u64,
        len: buf.len() as u64,
    };
    // SAFETY: `qreq.buf` points at `buf`, `qreq.len` bytes long, which outlives the
    // call; the kernel copies the VMM's answer back into at most `len` bytes.
    unsafe { tdx_get_quote(file.as_raw_fd(), &mut qreq) }
        .map_err(|e| err(format!("TDX_CMD_GET_QUOTE: {e}")))?;
    parse_quote_response(&buf).map_err(|e| err(e.to_string()))
}

#[cfg(test)]
#[allow(clippy::arithmetic_side_effects)]
mod tests {
    use super::*;

    /// What a VMM writes back: status 0, out_len, then the QGS response.
    fn response(quote: &[u8], status: u64, error_code: u32) -> Vec<u8> {
        let id = [7u8; 16];
        let msg_len = 16 + 8 + id.len() + quote.len();
        let mut b = Vec::new();
        b.extend_from_slice(&1u64.to_le_bytes());
        b.extend_from_slice(&status.to_le_bytes());
        b.extend_from_slice(&0u32.to_le_bytes());
        b.extend_from_slice(&((msg_len + 4) as u32).to_le_bytes());
        b.extend_from_slice(&(msg_len as u32).to_be_bytes());
        b.extend_from_slice(&1u16.to_le_bytes());
        b.extend_from_slice(&0u16.to_le_bytes());
        b.extend_from_slice(&1u32.to_le_bytes());
        b.extend_from_slice(&(msg_len as u32).to_le_bytes());
        b.extend_from_slice(&error_code.to_le_bytes());
        b.extend_from_slice(&(id.len() as u32).to_le_bytes());
        b.extend_from_slice(&(quote.len() as u32).to_le_bytes());
        b.extend_from_slice(&id);
        b.extend_from_slice(quote);
        b.resize(QUOTE_BUF_LEN, 0);
        b
    }

    #[test]
    fn request_layout_matches_the_qgs_message() {
        let report = [0xabu8; TDX_REPORT_LEN];
        let b = build_quote_request(&report);
        assert_eq!(b.len(), QUOTE_BUF_LEN);
        assert_eq!(&b[16..20], &(1048u32 + 4).to_le_bytes()); // in_len
        assert_eq!(&b[24..28], &1048u32.to_be_bytes()); // length prefix
        assert_eq!(&b[32..36], &0u32.to_le_bytes()); // GET_QUOTE_REQ
        assert_eq!(&b[44..48], &1024u32.to_le_bytes()); // report_size
        assert_eq!(&b[52..52 + 1024], &report[..]);
    }

    #[test]
    fn response_yields_the_quote() {
        let quote = b"\x04\x00\x02\x00quote bytes".to_vec();
        assert_eq!(
            parse_quote_response(&response(&quote, 0, 0)).unwrap(),
            quote
        );
    }

    #[test]
    fn vmm_failure_status_is_named() {
        let e = parse_quote_response(&response(b"q", 0x8000_0000_0000_0000, 0)).unwrap_err();
        assert!(e.to_string().contains("tdx_quote_hdr.status"), "{e}");
        let e = parse_quote_response(&response(b"q", 0, 0x12)).unwrap_err();
        assert!(e.to_string().contains("error_code"), "{e}");
    }

    #[test]
    fn truncated_response_is_an_error_not_a_panic() {
        let full = response(b"a quote", 0, 0);
        for cut in [0, 10, 24, 30, 50, 60] {
            assert!(parse_quote_response(&full[..cut]).is_err(), "cut {cut}");
        }
    }
}
