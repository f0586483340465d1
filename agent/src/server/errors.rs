//! JSON error answers in the OpenAI error shape: `{"error":{"type":..,"message":..}}`.

use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Response, StatusCode};

use super::body::RespBody;

/// An error answer.
pub fn json_error(status: StatusCode, kind: &str, message: &str) -> Response<RespBody> {
    let body = serde_json::json!({ "error": { "type": kind, "message": message } }).to_string();
    let mut resp = Response::new(RespBody::full(body));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

pub fn engine_unavailable(message: &str) -> Response<RespBody> {
    json_error(
        StatusCode::SERVICE_UNAVAILABLE,
        "engine_unavailable",
        message,
    )
}

pub fn too_large(limit: u64) -> Response<RespBody> {
    json_error(
        StatusCode::PAYLOAD_TOO_LARGE,
        "request_too_large",
        &format!("request body exceeds limits.max_body_bytes ({limit} bytes)"),
    )
}

pub fn too_many(limit: u32) -> Response<RespBody> {
    json_error(
        StatusCode::TOO_MANY_REQUESTS,
        "too_many_requests",
        &format!("more than limits.max_concurrent_requests ({limit}) requests in flight"),
    )
}

pub fn bad_request(message: &str) -> Response<RespBody> {
    json_error(StatusCode::BAD_REQUEST, "invalid_request", message)
}

pub fn not_found() -> Response<RespBody> {
    json_error(StatusCode::NOT_FOUND, "not_found", "no such route")
}

pub fn method_not_allowed() -> Response<RespBody> {
    json_error(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "method not allowed on this route",
    )
}

pub fn bad_gateway(message: &str) -> Response<RespBody> {
    json_error(StatusCode::BAD_GATEWAY, "engine_failure", message)
}

pub fn internal(message: &str) -> Response<RespBody> {
    json_error(StatusCode::INTERNAL_SERVER_ERROR, "internal_error", message)
}
