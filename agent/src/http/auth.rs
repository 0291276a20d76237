//! Who is calling: a token as `Authorization: Bearer TOKEN`, or as the password
//! of HTTP basic auth (any user name, like GitHub), or nobody.

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

/// The caller of a request; a token that is present but unknown or revoked is a 401.
pub fn caller(
    agent: Arc<Agent>,
) -> impl Filter<Extract = (Caller,), Error = warp::Rejection> + Clone {
    warp::header::optional::<String>("authorization").and_then(move |header: Option<String>| {
        let agent = agent.clone();
        async move {
            let Some(header) = header else {
                return Ok(Caller::anonymous());
            };
            let Some(token) =
                token_from_header(&header).filter(|t| !t.is_empty() && t.len() <= 256)
            else {
                return Err(warp::reject::custom(ApiError::unauthorized()));
            };
            let found = agent
                .db(move |a| {
                    a.store
                        .read(|c| tokens::authenticate(c, &token))
                        .map_err(ApiError::from)
                })
                .await
                .map_err(warp::reject::custom)?;
            let Some((id, user)) = found else {
                return Err(warp::reject::custom(ApiError::new(
                    warp::http::StatusCode::UNAUTHORIZED,
                    "unauthorized",
                    "this token is unknown or revoked; create one with `hangar token create NAME`",
                )));
            };
            let store_agent = agent.clone();
            tokio::task::spawn_blocking(move || {
                if let Err(e) = store_agent.store.write(|tx| tokens::touch(tx, id)) {
                    tracing::warn!("cannot record token use: {e}");
                }
            });
            Ok(Caller { user: Some(user) })
        }
    })
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
