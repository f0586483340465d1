//! An HTTPS client over the RA-TLS verifier, one request per connection.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use cocoon_measurements::ratls::{RaTlsServerVerifier, RaTlsVerifierConfig};
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;

pub struct Answer {
    pub status: StatusCode,
    pub headers: hyper::HeaderMap,
    /// The body's frames as they arrived; a broken body ends in a `<<body error>>` one.
    pub frames: Vec<Bytes>,
}

impl Answer {
    /// Reads the rest of a response [`open`] returned.
    pub async fn read(status: StatusCode, headers: hyper::HeaderMap, mut body: Incoming) -> Answer {
        let mut frames = Vec::new();
        while let Some(f) = body.frame().await {
            match f {
                Ok(f) => {
                    if let Ok(d) = f.into_data() {
                        frames.push(d);
                    }
                }
                Err(e) => {
                    frames.push(Bytes::from(format!("<<body error: {e}>>")));
                    break;
                }
            }
        }
        Answer {
            status,
            headers,
            frames,
        }
    }

    pub fn body(&self) -> Vec<u8> {
        self.frames.concat()
    }
    pub fn text(&self) -> String {
        String::from_utf8(self.body()).unwrap()
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body()).unwrap()
    }
}

pub async fn request(
    addr: SocketAddr,
    verifier: RaTlsVerifierConfig,
    method: &str,
    path: &str,
    body: Option<&[u8]>,
) -> Result<Answer, String> {
    let (status, headers, body) = open(addr, verifier, method, path, body, &[]).await?;
    Ok(Answer::read(status, headers, body).await)
}

/// Send the request (with `extra` headers) and return the response's head with its
/// body still to be read, for tests that act between frames or read it with
/// [`Answer::read`].
pub async fn open(
    addr: SocketAddr,
    verifier: RaTlsVerifierConfig,
    method: &str,
    path: &str,
    body: Option<&[u8]>,
    extra: &[(&str, &str)],
) -> Result<(StatusCode, hyper::HeaderMap, Incoming), String> {
    let v = Arc::new(RaTlsServerVerifier::new(verifier));
    let tls = v.client_config().map_err(|e| e.to_string())?;
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| e.to_string())?;
    let stream = tokio_rustls::TlsConnector::from(Arc::new(tls))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .map_err(|e| e.to_string())?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    let mut req = Request::builder()
        .method(method)
        .uri(path)
        .header("host", "localhost");
    if body.is_some() {
        req = req.header("content-type", "application/json");
    }
    for (name, value) in extra {
        req = req.header(*name, *value);
    }
    let req = req
        .body(Full::new(Bytes::copy_from_slice(body.unwrap_or_default())))
        .unwrap();
    let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
    let status = resp.status();
    let headers = resp.headers().clone();
    Ok((status, headers, resp.into_body()))
}
