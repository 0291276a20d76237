//! Who is calling: a token as `Authorization: Bearer TOKEN`, or as the password
//! of HTTP basic auth (any user name, like GitHub), or in the dashboard's
//! session cookie, or nobody.

use std::sync::Arc;

use base64::Engine as _;
use hangar_core::store::repos::Repo;
use hangar_core::store::tokens;
use hangar_core::store::users::{Role, User};
use warp::Filter;

use super::error::ApiError;
use crate::agent::Agent;

/// The authenticated user, if any.
#[derive(Debug, Clone)]
pub struct Caller {
    pub user: Option<User>,
}

impl Caller {
    pub fn anonymous() -> Self {
        Self { user: None }
    }

    /// The signed-in user, or 401.
    pub fn require(&self) -> Result<&User, ApiError> {
        self.user.as_ref().ok_or_else(ApiError::unauthorized)
    }

    pub fn require_admin(&self) -> Result<&User, ApiError> {
        let user = self.require()?;
        if user.role != Role::Admin {
            return Err(ApiError::forbidden(format!(
                "only admins may do this; {} is a {}",
                user.name,
                user.role.as_str()
            )));
        }
        Ok(user)
    }

    pub fn can_read(&self, repo: &Repo) -> bool {
        crate::git::access::can_read(self.user.as_ref(), repo)
    }

    /// 403 unless the caller may push to repositories.
    pub fn require_write(&self) -> Result<&User, ApiError> {
        let user = self.require()?;
        if !user.role.can_write() {
            return Err(ApiError::forbidden(crate::git::access::read_only(user)));
        }
        Ok(user)
    }
}

/// Extracts the token from an `Authorization` header value.
pub fn token_from_header(value: &str) -> Option<String> {
    let (scheme, rest) = value.trim().split_once(' ')?;
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("token") {
        return Some(rest.to_owned());
    }
    if scheme.eq_ignore_ascii_case("basic") {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(rest)
            .ok()?;
        let text = String::from_utf8(decoded).ok()?;
        let (_, password) = text.split_once(':')?;
        return Some(password.to_owned());
    }
    None
}

/// The cookie the dashboard signs in with (`POST /api/v1/session`). HttpOnly,
/// so page scripts never hold the token; SameSite=Strict, so other sites
/// cannot make a browser send it.
pub const SESSION_COOKIE: &str = "hangar_session";

/// The header the dashboard sends with every request. A cookie alone does not
/// authorize a request that changes something: other origins cannot set a
/// custom header without a CORS preflight, which the agent never grants.
pub const UI_HEADER: &str = "x-hangar-ui";

/// The caller of a request; a token that is present but unknown or revoked is a 401.
/// The `Authorization` header wins over the session cookie.
pub fn caller(
    agent: Arc<Agent>,
) -> impl Filter<Extract = (Caller,), Error = warp::Rejection> + Clone {
    warp::header::optional::<String>("authorization")
        .and(warp::cookie::optional::<String>(SESSION_COOKIE))
        .and(warp::method())
        .and(warp::header::optional::<String>(UI_HEADER))
        .and_then(
            move |header: Option<String>,
                  cookie: Option<String>,
                  method: warp::http::Method,
                  ui: Option<String>| {
                let agent = agent.clone();
                async move {
                    let token = match (header, cookie) {
                        (Some(header), _) => token_from_header(&header),
                        (None, Some(cookie)) => {
                            if !method.is_safe() && ui.is_none() {
                                return Err(warp::reject::custom(ApiError::forbidden(format!(
                                    "a session cookie authorizes changes only with the `{UI_HEADER}` header; \
                                     scripts should send `Authorization: Bearer TOKEN`"
                                ))));
                            }
                            Some(cookie)
                        }
                        (None, None) => return Ok(Caller::anonymous()),
                    };
                    let Some(token) = token.filter(|t| !t.is_empty() && t.len() <= 256) else {
                        return Err(warp::reject::custom(ApiError::unauthorized()));
                    };
                    authenticate(&agent, token)
                        .await
                        .map(|user| Caller { user: Some(user) })
                        .map_err(warp::reject::custom)
                }
            },
        )
}

/// The user a token belongs to; records that the token was used.
pub async fn authenticate(agent: &Arc<Agent>, token: String) -> Result<User, ApiError> {
    let found = agent
        .db(move |a| {
            a.store
                .read(|c| tokens::authenticate(c, &token))
                .map_err(ApiError::from)
        })
        .await?;
    let Some((id, user)) = found else {
        return Err(ApiError::new(
            warp::http::StatusCode::UNAUTHORIZED,
            "unauthorized",
            "this token is unknown or revoked; create one with `hangar token create NAME`",
        ));
    };
    let store_agent = agent.clone();
    tokio::task::spawn_blocking(move || {
        if let Err(e) = store_agent.store.write(|tx| tokens::touch(tx, id)) {
            tracing::warn!("cannot record token use: {e}");
        }
    });
    Ok(user)
}

#[cfg(test)]
mod tests {
    use super::token_from_header;

    #[test]
    fn reads_bearer_and_basic() {
        assert_eq!(token_from_header("Bearer hgr_x").as_deref(), Some("hgr_x"));
        // "anyone:hgr_y"
        assert_eq!(
            token_from_header("Basic YW55b25lOmhncl95").as_deref(),
            Some("hgr_y")
        );
        assert_eq!(token_from_header("Basic !!!"), None);
        assert_eq!(token_from_header("Digest x"), None);
    }
}
