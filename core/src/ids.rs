//! Typed ULID identifiers, so a user id can never be passed where a repo id is expected.

use std::fmt;
use std::str::FromStr;

macro_rules! ulid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(ulid::Ulid);

        impl $name {
            /// A fresh id, ordered by creation time.
            pub fn new() -> Self {
                Self(ulid::Ulid::new())
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = InvalidId;
            fn from_str(s: &str) -> Result<Self, InvalidId> {
                ulid::Ulid::from_string(s).map(Self).map_err(|_| InvalidId(s.chars().take(40).collect()))
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }

        impl rusqlite::ToSql for $name {
            fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
                Ok(rusqlite::types::ToSqlOutput::from(self.0.to_string()))
            }
        }

        impl rusqlite::types::FromSql for $name {
            fn column_result(v: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<Self> {
                let s = v.as_str()?;
                s.parse().map_err(|e| rusqlite::types::FromSqlError::Other(Box::new(e)))
            }
        }
    };
}

/// A string that is not a ULID.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a valid id (expected a 26-character ULID)")]
pub struct InvalidId(String);

ulid_id!(
    /// A user of the agent.
    UserId
);
ulid_id!(
    /// An API token.
    TokenId
);
ulid_id!(
    /// A repository.
    RepoId
);
ulid_id!(
    /// A recorded event (push, ...).
    EventId
);
ulid_id!(
    /// A user's SSH public key.
    SshKeyId
);

ulid_id!(
    /// A build: one workflow run for one event.
    BuildId
);
ulid_id!(
    /// One job of a build (one matrix combination).
    JobId
);
ulid_id!(
    /// A forge account (GitHub, GitLab).
    ForgeId
);
ulid_id!(
    /// A received webhook delivery.
    DeliveryId
);
ulid_id!(
    /// A forge list (starred repos, an organization) that mirrors follow.
    SourceId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_text() {
        let id = RepoId::new();
        let back: RepoId = id.to_string().parse().unwrap();
        assert_eq!(id, back);
    }

    #[test]
    fn rejects_garbage() {
        let err = "not-an-id".parse::<UserId>().unwrap_err();
        assert!(err.to_string().contains("not-an-id"));
    }

    #[test]
    fn ids_sort_by_creation() {
        let a = EventId::new();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = EventId::new();
        assert!(a < b);
    }
}
