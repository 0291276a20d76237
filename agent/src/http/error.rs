//! API errors: `{"error": {"code", "message"}}` with the right status.

use warp::http::StatusCode;
use warp::reply::Response;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "authentication required: send a token as `Authorization: Bearer TOKEN` (or as the HTTP password)",
        )
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    pub fn not_found(what: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", what)
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", message)
    }

    pub fn too_large(message: impl Into<String>) -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, "too_large", message)
    }

    pub fn internal(error: impl std::fmt::Display) -> Self {
        tracing::error!("internal error: {error}");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error; see the agent's log",
        )
    }

    pub fn into_response(self) -> Response {
        let body = serde_json::json!({ "error": { "code": self.code, "message": self.message } });
        let mut response =
            warp::reply::with_status(warp::reply::json(&body), self.status).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                "www-authenticate",
                warp::http::HeaderValue::from_static("Basic realm=\"Hangar\""),
            );
        }
        response
    }
}

use warp::Reply as _;

impl warp::reject::Reject for ApiError {}

impl From<hangar_core::store::StoreError> for ApiError {
    fn from(e: hangar_core::store::StoreError) -> Self {
        Self::internal(e)
    }
}

impl From<hangar_core::store::SqlError> for ApiError {
    fn from(e: hangar_core::store::SqlError) -> Self {
        Self::internal(e)
    }
}

impl From<tokio::task::JoinError> for ApiError {
    fn from(e: tokio::task::JoinError) -> Self {
        Self::internal(e)
    }
}

impl From<crate::git::read::ReadError> for ApiError {
    fn from(e: crate::git::read::ReadError) -> Self {
        Self::internal(e)
    }
}

impl From<hangar_core::repo_name::InvalidRepoName> for ApiError {
    fn from(e: hangar_core::repo_name::InvalidRepoName) -> Self {
        Self::bad_request(e.to_string())
    }
}

/// Handler results: either a reply or an API error, both turned into responses.
pub type ApiResult = Result<Response, ApiError>;

/// Turns a handler's result into a response (warp needs `Ok` for replies).
pub fn respond(result: ApiResult) -> Result<Response, std::convert::Infallible> {
    Ok(result.unwrap_or_else(ApiError::into_response))
}

/// Maps warp's own rejections (unknown path, bad JSON, body too big) to API errors.
pub async fn recover(rejection: warp::Rejection) -> Result<Response, std::convert::Infallible> {
    let error = if let Some(e) = rejection.find::<ApiError>() {
        ApiError::new(e.status, e.code, e.message.clone())
    } else if rejection.is_not_found() {
        ApiError::not_found("no such endpoint; see /api/v1/openapi.json")
    } else if let Some(e) = rejection.find::<warp::filters::body::BodyDeserializeError>() {
        ApiError::bad_request(format!(
            "request body is not valid JSON for this endpoint: {e}"
        ))
    } else if rejection.find::<warp::reject::PayloadTooLarge>().is_some() {
        ApiError::too_large("request body too large")
    } else if rejection.find::<warp::reject::MethodNotAllowed>().is_some() {
        ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "method not allowed on this path",
        )
    } else if let Some(e) = rejection.find::<warp::reject::InvalidQuery>() {
        ApiError::bad_request(format!("invalid query string: {e}"))
    } else if let Some(e) = rejection.find::<warp::reject::InvalidHeader>() {
        ApiError::bad_request(e.to_string())
    } else if rejection
        .find::<warp::reject::UnsupportedMediaType>()
        .is_some()
    {
        ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send JSON with Content-Type: application/json",
        )
    } else if rejection.find::<warp::reject::LengthRequired>().is_some() {
        ApiError::new(
            StatusCode::LENGTH_REQUIRED,
            "length_required",
            "send a Content-Length header",
        )
    } else {
        ApiError::internal(format!("unhandled rejection: {rejection:?}"))
    };
    Ok(error.into_response())
}
