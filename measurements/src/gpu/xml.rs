//! A narrow, safe wrapper over libxml2: parse, XPath, and W3C canonicalization.
//!
//! Why libxml2 and not a Rust crate: the RIMs are signed with XML-DSig over C14N 1.1
//! (`http://www.w3.org/2006/12/xml-c14n11`), and canonicalization must be exact or
//! every signature check fails (or, worse, passes on the wrong bytes). No maintained
//! pure-Rust crate implements inclusive C14N 1.1 of a document subset; the Rust
//! canonicalizers that exist (`xml_c14n`, `libxml`) are themselves bindings to
//! libxml2's `xmlC14NExecute`, and so is `xmlsec`. We call the same function directly
//! through a dozen hand-declared, ABI-stable entry points instead of pulling in
//! bindgen + libclang for them. Nothing here re-implements C14N.
//!
//! Hardening: documents with a DOCTYPE are refused before libxml2 sees them (no
//! entity expansion, no external subsets), parsing never touches the network
//! (`XML_PARSE_NONET`), and inputs are size-capped by the caller.
#![allow(unsafe_code)]

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::ptr::NonNull;
use std::sync::Once;

/// Largest XML document we hand to libxml2 (NVIDIA RIMs are ~20-60 KiB).
pub const MAX_XML_BYTES: usize = 4 << 20;

/// What libxml2 (or our guard in front of it) refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum XmlError {
    #[error("XML document is {len} bytes, over the limit of {max}")]
    TooLarge { len: usize, max: usize },
    #[error("XML document has a DOCTYPE at byte offset {offset}: refused (no DTDs or entities)")]
    Doctype { offset: usize },
    #[error("XML is not well-formed: {message} (line {line})")]
    Malformed { message: String, line: i32 },
    #[error("XPath expression {0:?} failed")]
    XPath(String),
    #[error("canonicalization failed (libxml2 returned {0})")]
    C14n(i32),
    #[error("XML value is not valid UTF-8")]
    Utf8,
}

/// W3C canonicalization algorithms libxml2 implements (its `xmlC14NMode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum C14nMode {
    /// Canonical XML 1.0 (inclusive).
    Inclusive10,
    /// Exclusive XML Canonicalization 1.0.
    Exclusive10,
    /// Canonical XML 1.1 (inclusive).
    Inclusive11,
}

impl C14nMode {
    fn as_c(self) -> c_int {
        // Values of libxml2's `xmlC14NMode` enum (c14n.h).
        match self {
            C14nMode::Inclusive10 => 0,
            C14nMode::Exclusive10 => 1,
            C14nMode::Inclusive11 => 2,
        }
    }
}

// Mirrors of the two public libxml2 structs we read. Their layout has been fixed
// since libxml2 2.4 (xpath.h); we read only the leading fields.
#[repr(C)]
struct XPathObject {
    kind: c_int,
    nodesetval: *mut NodeSet,
    boolval: c_int,
    floatval: f64,
    stringval: *mut u8,
}

#[repr(C)]
struct NodeSet {
    node_nr: c_int,
    node_max: c_int,
    node_tab: *mut *mut c_void,
}

#[repr(C)]
struct XmlErrorC {
    domain: c_int,
    code: c_int,
    message: *const c_char,
    level: c_int,
    file: *const c_char,
    line: c_int,
}

const XPATH_NODESET: c_int = 1;
const XPATH_BOOLEAN: c_int = 2;
const XPATH_NUMBER: c_int = 3;
const XPATH_STRING: c_int = 4;

// parser.h `xmlParserOption`: NOERROR | NOWARNING | NONET. NOENT is deliberately
// absent (it would substitute entities).
const PARSE_OPTIONS: c_int = 32 | 64 | 2048;

#[link(name = "xml2")]
extern "C" {
    fn xmlInitParser();
    fn xmlReadMemory(
        buffer: *const c_char,
        size: c_int,
        url: *const c_char,
        encoding: *const c_char,
        options: c_int,
    ) -> *mut c_void;
    fn xmlFreeDoc(doc: *mut c_void);
    fn xmlGetIntSubset(doc: *const c_void) -> *mut c_void;
    fn xmlGetLastError() -> *const XmlErrorC;
    fn xmlResetLastError();
    fn xmlSetStructuredErrorFunc(ctx: *mut c_void, handler: Option<StructuredErrorFn>);
    fn xmlXPathNewContext(doc: *mut c_void) -> *mut c_void;
    fn xmlXPathFreeContext(ctx: *mut c_void);
    fn xmlXPathRegisterNs(ctx: *mut c_void, prefix: *const u8, ns_uri: *const u8) -> c_int;
    fn xmlXPathEvalExpression(expr: *const u8, ctx: *mut c_void) -> *mut XPathObject;
    fn xmlXPathFreeObject(obj: *mut XPathObject);
    fn xmlC14NDocDumpMemory(
        doc: *mut c_void,
        nodes: *mut NodeSet,
        mode: c_int,
        inclusive_ns_prefixes: *mut *mut u8,
        with_comments: c_int,
        doc_txt_ptr: *mut *mut u8,
    ) -> c_int;
    // globals.h: `xmlFree` is a variable holding the deallocator (libxml2 is not
    // built with LIBXML_THREAD_ALLOC_ENABLED on Debian; checked on 2.9.14).
    static xmlFree: unsafe extern "C" fn(*mut c_void);
}

type StructuredErrorFn = unsafe extern "C" fn(*mut c_void, *const XmlErrorC);

/// Errors are reported through return values; keep libxml2 from printing them.
unsafe extern "C" fn silent_error(_ctx: *mut c_void, _err: *const XmlErrorC) {}

fn init() {
    static INIT: Once = Once::new();
    // SAFETY: xmlInitParser is idempotent and must run before threads use libxml2.
    INIT.call_once(|| unsafe { xmlInitParser() });
    // SAFETY: libxml2 keeps the handler in per-thread global state; set it on every
    // thread that parses.
    unsafe { xmlSetStructuredErrorFunc(std::ptr::null_mut(), Some(silent_error)) };
}

fn last_error() -> XmlError {
    // SAFETY: xmlGetLastError returns NULL or a pointer to thread-local state that
    // stays valid until the next libxml2 call on this thread.
    unsafe {
        let e = xmlGetLastError();
        if e.is_null() {
            return XmlError::Malformed {
                message: "unknown parser error".into(),
                line: 0,
            };
        }
        let message = if (*e).message.is_null() {
            "unknown parser error".to_string()
        } else {
            CStr::from_ptr((*e).message)
                .to_string_lossy()
                .trim()
                .to_string()
        };
        let line = (*e).line;
        xmlResetLastError();
        XmlError::Malformed { message, line }
    }
}

/// A parsed XML document, owned; freed on drop.
pub struct XmlDoc {
    doc: NonNull<c_void>,
    namespaces: Vec<(CString, CString)>,
}

impl Drop for XmlDoc {
    fn drop(&mut self) {
        // SAFETY: `doc` came from xmlReadMemory and is freed exactly once.
        unsafe { xmlFreeDoc(self.doc.as_ptr()) }
    }
}

/// The result of an XPath evaluation, freed on drop.
struct XPathResult(NonNull<XPathObject>);

impl Drop for XPathResult {
    fn drop(&mut self) {
        // SAFETY: the object came from xmlXPathEvalExpression; freed exactly once.
        unsafe { xmlXPathFreeObject(self.0.as_ptr()) }
    }
}

struct XPathContext(NonNull<c_void>);

impl Drop for XPathContext {
    fn drop(&mut self) {
        // SAFETY: the context came from xmlXPathNewContext; freed exactly once.
        unsafe { xmlXPathFreeContext(self.0.as_ptr()) }
    }
}

impl XmlDoc {
    /// Parse a document. `namespaces` are (prefix, URI) pairs that XPath
    /// expressions on this document may use.
    pub fn parse(bytes: &[u8], namespaces: &[(&str, &str)]) -> Result<Self, XmlError> {
        if bytes.len() > MAX_XML_BYTES {
            return Err(XmlError::TooLarge {
                len: bytes.len(),
                max: MAX_XML_BYTES,
            });
        }
        // Decoded as UTF-8 whatever the document declares (below), so the byte
        // search for a DOCTYPE cannot be dodged with another encoding.
        if let Err(e) = std::str::from_utf8(bytes) {
            return Err(XmlError::Malformed {
                message: format!("not UTF-8 at byte offset {}", e.valid_up_to()),
                line: 0,
            });
        }
        if let Some(offset) = find(bytes, b"<!DOCTYPE") {
            return Err(XmlError::Doctype { offset });
        }
        let size = c_int::try_from(bytes.len()).map_err(|_| XmlError::TooLarge {
            len: bytes.len(),
            max: MAX_XML_BYTES,
        })?;
        let namespaces = namespaces
            .iter()
            .map(|(p, u)| Ok((CString::new(*p)?, CString::new(*u)?)))
            .collect::<Result<Vec<_>, std::ffi::NulError>>()
            .map_err(|_| XmlError::XPath("namespace with NUL".into()))?;
        init();
        // SAFETY: buffer/size describe a live slice; the URL may be NULL; the
        // encoding is a NUL-terminated literal.
        let doc = unsafe {
            xmlResetLastError();
            xmlReadMemory(
                bytes.as_ptr().cast(),
                size,
                std::ptr::null(),
                c"UTF-8".as_ptr(),
                PARSE_OPTIONS,
            )
        };
        let doc = NonNull::new(doc)
            .map(|doc| Self { doc, namespaces })
            .ok_or_else(last_error)?;
        // Second line of defence: no DTD made it into the tree.
        // SAFETY: doc is live.
        if !unsafe { xmlGetIntSubset(doc.doc.as_ptr()) }.is_null() {
            return Err(XmlError::Doctype { offset: 0 });
        }
        Ok(doc)
    }

    fn eval(&self, expr: &str) -> Result<(XPathContext, XPathResult), XmlError> {
        let err = || XmlError::XPath(expr.to_string());
        let c_expr = CString::new(expr).map_err(|_| err())?;
        // SAFETY: doc is live; the context is freed by its guard.
        let ctx = NonNull::new(unsafe { xmlXPathNewContext(self.doc.as_ptr()) })
            .map(XPathContext)
            .ok_or_else(err)?;
        for (prefix, uri) in &self.namespaces {
            // SAFETY: both strings are NUL-terminated and outlive the call (libxml2
            // copies them).
            let rc = unsafe {
                xmlXPathRegisterNs(ctx.0.as_ptr(), prefix.as_ptr().cast(), uri.as_ptr().cast())
            };
            if rc != 0 {
                return Err(err());
            }
        }
        // SAFETY: expression is NUL-terminated; result freed by its guard. The result
        // must not outlive the context, so both are returned together.
        let obj =
            NonNull::new(unsafe { xmlXPathEvalExpression(c_expr.as_ptr().cast(), ctx.0.as_ptr()) })
                .map(XPathResult)
                .ok_or_else(err)?;
        Ok((ctx, obj))
    }

    /// Evaluate an XPath expression that yields a number (e.g. `count(...)`).
    pub fn xpath_count(&self, expr: &str) -> Result<usize, XmlError> {
        let (_ctx, obj) = self.eval(expr)?;
        // SAFETY: obj points to a live XPathObject.
        let o = unsafe { obj.0.as_ref() };
        let n = match o.kind {
            XPATH_NUMBER => o.floatval,
            XPATH_NODESET => {
                if o.nodesetval.is_null() {
                    0.0
                } else {
                    // SAFETY: non-null nodeset owned by obj.
                    f64::from(unsafe { (*o.nodesetval).node_nr })
                }
            }
            _ => return Err(XmlError::XPath(expr.to_string())),
        };
        if (0.0..1e9).contains(&n) {
            // Checked range above: the cast cannot truncate meaningfully.
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            Ok(n as usize)
        } else {
            Err(XmlError::XPath(expr.to_string()))
        }
    }

    /// Evaluate an XPath expression wrapped in `string(...)`.
    pub fn xpath_string(&self, expr: &str) -> Result<String, XmlError> {
        let (_ctx, obj) = self.eval(&format!("string({expr})"))?;
        // SAFETY: obj points to a live XPathObject.
        let o = unsafe { obj.0.as_ref() };
        if o.kind != XPATH_STRING {
            return Err(XmlError::XPath(expr.to_string()));
        }
        if o.stringval.is_null() {
            return Ok(String::new());
        }
        // SAFETY: stringval is a NUL-terminated xmlChar string owned by obj.
        let s = unsafe { CStr::from_ptr(o.stringval.cast()) };
        s.to_str().map(str::to_string).map_err(|_| XmlError::Utf8)
    }

    /// Evaluate an XPath expression wrapped in `boolean(...)`.
    pub fn xpath_bool(&self, expr: &str) -> Result<bool, XmlError> {
        let (_ctx, obj) = self.eval(&format!("boolean({expr})"))?;
        // SAFETY: obj points to a live XPathObject.
        let o = unsafe { obj.0.as_ref() };
        if o.kind != XPATH_BOOLEAN {
            return Err(XmlError::XPath(expr.to_string()));
        }
        Ok(o.boolval != 0)
    }

    /// Canonicalize the node-set selected by `nodes` (an XPath expression
    /// yielding a node-set), or the whole document when `None`. Comments are
    /// dropped unless `with_comments`.
    pub fn canonicalize(
        &self,
        nodes: Option<&str>,
        mode: C14nMode,
        with_comments: bool,
    ) -> Result<Vec<u8>, XmlError> {
        let selection = match nodes {
            Some(expr) => {
                let (ctx, obj) = self.eval(expr)?;
                // SAFETY: obj points to a live XPathObject.
                if unsafe { obj.0.as_ref() }.kind != XPATH_NODESET {
                    return Err(XmlError::XPath(expr.to_string()));
                }
                Some((ctx, obj))
            }
            None => None,
        };
        let nodeset = selection
            .as_ref()
            // SAFETY: obj is live for the rest of this function.
            .map(|(_, obj)| unsafe { obj.0.as_ref() }.nodesetval)
            .unwrap_or(std::ptr::null_mut());
        if selection.is_some() && nodeset.is_null() {
            // An empty selection canonicalizes to nothing; libxml2 would treat a
            // NULL set as "the whole document", which is not what was asked.
            return Ok(Vec::new());
        }
        let mut out: *mut u8 = std::ptr::null_mut();
        // SAFETY: doc and nodeset are live; libxml2 allocates `out` with xmlMalloc.
        let n = unsafe {
            xmlC14NDocDumpMemory(
                self.doc.as_ptr(),
                nodeset,
                mode.as_c(),
                std::ptr::null_mut(),
                c_int::from(with_comments),
                &mut out,
            )
        };
        if out.is_null() {
            return Err(XmlError::C14n(n));
        }
        let result = usize::try_from(n).map(|len| {
            // SAFETY: libxml2 wrote `len` bytes at `out`.
            unsafe { std::slice::from_raw_parts(out, len) }.to_vec()
        });
        // SAFETY: `out` was allocated by libxml2's allocator.
        unsafe { xmlFree(out.cast()) };
        result.map_err(|_| XmlError::C14n(n))
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Known-answer tests from the W3C Canonical XML recommendation (section 3).
    #[test]
    fn c14n_spec_example_3_3_start_and_end_tags() {
        let input = br#"<doc>
   <e1   />
   <e2   ></e2>
   <e3   name = "elem3"   id="elem3"   />
   <e4   name="elem4"   id="elem4"   ></e4>
   <e5 a:attr="out" b:attr="sorted" attr2="all" attr="I'm"
      xmlns:b="http://www.ietf.org"
      xmlns:a="http://www.w3.org"
      xmlns="http://example.org"/>
   <e6 xmlns="" xmlns:a="http://www.w3.org">
      <e7 xmlns="http://www.ietf.org">
         <e8 xmlns="" xmlns:a="http://www.w3.org">
            <e9 xmlns="" xmlns:a="http://www.ietf.org"/>
         </e8>
      </e7>
   </e6>
</doc>"#;
        let expected = r#"<doc>
   <e1></e1>
   <e2></e2>
   <e3 id="elem3" name="elem3"></e3>
   <e4 id="elem4" name="elem4"></e4>
   <e5 xmlns="http://example.org" xmlns:a="http://www.w3.org" xmlns:b="http://www.ietf.org" attr="I'm" attr2="all" b:attr="sorted" a:attr="out"></e5>
   <e6 xmlns:a="http://www.w3.org">
      <e7 xmlns="http://www.ietf.org">
         <e8 xmlns="">
            <e9 xmlns:a="http://www.ietf.org"></e9>
         </e8>
      </e7>
   </e6>
</doc>"#;
        let doc = XmlDoc::parse(input, &[]).unwrap();
        for mode in [C14nMode::Inclusive10, C14nMode::Inclusive11] {
            let out = doc.canonicalize(None, mode, false).unwrap();
            assert_eq!(String::from_utf8(out).unwrap(), expected, "{mode:?}");
        }
    }

    #[test]
    fn subset_canonicalization_carries_inherited_namespaces() {
        // Inclusive C14N of a subtree renders the in-scope namespaces of its apex;
        // exclusive C14N renders only the visibly used ones.
        let input = br#"<r xmlns="urn:d" xmlns:x="urn:x"><x:s><t/></x:s></r>"#;
        let doc = XmlDoc::parse(input, &[("x", "urn:x")]).unwrap();
        let sel = "(//. | //@* | //namespace::*)[ancestor-or-self::x:s]";
        let inc = doc
            .canonicalize(Some(sel), C14nMode::Inclusive11, false)
            .unwrap();
        assert_eq!(
            String::from_utf8(inc).unwrap(),
            r#"<x:s xmlns="urn:d" xmlns:x="urn:x"><t></t></x:s>"#
        );
        let exc = doc
            .canonicalize(Some(sel), C14nMode::Exclusive10, false)
            .unwrap();
        assert_eq!(
            String::from_utf8(exc).unwrap(),
            r#"<x:s xmlns:x="urn:x"><t xmlns="urn:d"></t></x:s>"#
        );
    }

    #[test]
    fn doctype_and_garbage_are_refused() {
        let e = XmlDoc::parse(b"<!DOCTYPE x [<!ENTITY a 'b'>]><x>&a;</x>", &[]).err();
        assert!(matches!(e, Some(XmlError::Doctype { offset: 0 })));
        let e = XmlDoc::parse(b"<a><b></a>", &[]).err();
        assert!(matches!(e, Some(XmlError::Malformed { .. })), "{e:?}");
        assert!(XmlDoc::parse(b"", &[]).is_err());
        // UTF-16 (or any non-UTF-8 encoding) could hide a DOCTYPE from the byte scan.
        let utf16: Vec<u8> = "\u{feff}<!DOCTYPE a><a/>"
            .encode_utf16()
            .flat_map(u16::to_le_bytes)
            .collect();
        assert!(XmlDoc::parse(&utf16, &[]).is_err());
    }

    #[test]
    fn xpath_reads_strings_counts_and_booleans() {
        let doc = XmlDoc::parse(br#"<a n="1"><b/><b/></a>"#, &[]).unwrap();
        assert_eq!(doc.xpath_count("count(/a/b)").unwrap(), 2);
        assert_eq!(doc.xpath_string("/a/@n").unwrap(), "1");
        assert_eq!(doc.xpath_string("/a/@missing").unwrap(), "");
        assert!(doc.xpath_bool("/a/@n").unwrap());
        assert!(doc.xpath_count("count(").is_err());
    }
}
