//! `actions/upload-artifact` and `actions/download-artifact`, built in:
//! archives under `DATA/artifacts/BUILD/NAME.tar`, recorded in SQLite, and
//! removed by a background task when their retention ends.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use hangar_core::ids::BuildId;
use hangar_core::store::artifacts::{self, Artifact};
use hangar_core::store::builds::Job;

use super::archive;
use crate::agent::Agent;

/// Where an artifact's archive lives.
pub fn path(data_root: &Path, build: BuildId, name: &str) -> PathBuf {
    data_root
        .join("artifacts")
        .join(build.to_string())
        .join(format!("{name}.tar"))
}

/// Names are file names and URL segments: GitHub's rules, plus no leading dot.
pub fn check_name(name: &str) -> Result<(), String> {
    let bad = name.is_empty()
        || name.len() > 200
        || name.starts_with('.')
        || name
            .chars()
            .any(|c| c.is_control() || "\"<>|*?:/\\".contains(c));
    if bad {
        return Err(format!(
            "artifact name {name:?} is not valid: use 1 to 200 characters without \" < > | * ? : / \\, not starting with a dot"
        ));
    }
    Ok(())
}

/// Where the paths of action inputs point.
pub struct Dirs<'a> {
    pub workspace: &'a Path,
    /// What `~` means, if anything (not in container jobs).
    pub home: Option<&'a Path>,
}

pub async fn upload(
    agent: &Arc<Agent>,
    job: &Job,
    place: &Dirs<'_>,
    with: &BTreeMap<String, String>,
) -> Result<String, String> {
    let name = with
        .get("name")
        .map_or("artifact", String::as_str)
        .to_owned();
    check_name(&name)?;
    let patterns = with
        .get("path")
        .cloned()
        .ok_or("actions/upload-artifact needs `path`: the files or directories to upload")?;
    let if_none = with
        .get("if-no-files-found")
        .map_or("warn", String::as_str)
        .to_owned();
    if !["warn", "error", "ignore"].contains(&if_none.as_str()) {
        return Err(format!(
            "`if-no-files-found: {if_none}` is not one of warn, error, ignore"
        ));
    }
    let most = agent.settings.artifact_retention_days;
    let days = match with.get("retention-days").filter(|d| !d.is_empty()) {
        None => most,
        Some(d) => d
            .parse::<u32>()
            .ok()
            .filter(|d| *d >= 1)
            .ok_or_else(|| format!("`retention-days: {d}` is not a whole number of days"))?
            .min(most),
    };
    let hidden = with
        .get("include-hidden-files")
        .is_some_and(|v| v == "true");
    let build = job.build_id;
    let duplicate = || {
        format!(
            "this build already has an artifact named `{name}`: give each upload its own `name`"
        )
    };
    let lookup = name.clone();
    let exists = agent
        .db(move |a| {
            a.store
                .read(|c| artifacts::get_artifact(c, build, &lookup))
                .map_err(anyhow::Error::from)
        })
        .await
        .map_err(|e| format!("cannot read artifacts: {e}"))?;
    if exists.is_some() {
        return Err(duplicate());
    }

    let archive_path = path(agent.data.root(), build, &name);
    // Packed aside first: of two jobs uploading one name, the one whose record
    // lands keeps its archive.
    let packed_path = archive_path.with_extension(format!("tar.{}", job.id));
    let written = packed_path.clone();
    let (workspace, home) = (
        place.workspace.to_path_buf(),
        place.home.map(Path::to_path_buf),
    );
    let lines = patterns.clone();
    let packed = tokio::task::spawn_blocking(move || {
        let selection = archive::select(&workspace, home.as_deref(), &lines, hidden)?;
        if selection.files.is_empty() {
            return Ok(None);
        }
        let entries: Vec<(PathBuf, PathBuf)> = selection
            .files
            .iter()
            .map(|f| {
                let name = f.strip_prefix(&selection.root).unwrap_or(f).to_path_buf();
                (f.clone(), name)
            })
            .collect();
        let size = archive::write(&written, &entries)?;
        Ok::<_, String>(Some((entries.len(), size)))
    })
    .await
    .map_err(|e| format!("upload failed: {e}"))??;
    let Some((files, size)) = packed else {
        let message = format!("no files were found with the path {patterns:?}");
        return match if_none.as_str() {
            "error" => Err(message),
            "warn" => Ok(format!("Warning: {message}; no artifact was uploaded")),
            _ => Ok(format!("No files found; no artifact `{name}` uploaded")),
        };
    };
    let job_id = job.id;
    let record_name = name.clone();
    let inserted = agent
        .db(move |a| {
            a.store
                .write(|tx| {
                    artifacts::insert_artifact(
                        tx,
                        build,
                        &record_name,
                        job_id,
                        files as i64,
                        size as i64,
                        days,
                    )
                })
                .map_err(anyhow::Error::from)
        })
        .await
        .map_err(|e| format!("cannot record the artifact: {e}"))?;
    if !inserted {
        let _ = std::fs::remove_file(&packed_path);
        return Err(duplicate());
    }
    std::fs::rename(&packed_path, &archive_path)
        .map_err(|e| format!("cannot store the artifact: {e}"))?;
    Ok(format!(
        "Uploaded artifact `{name}`: {files} files, {} (kept {days} days)",
        human_size(size)
    ))
}

pub async fn download(
    agent: &Arc<Agent>,
    job: &Job,
    place: &Dirs<'_>,
    with: &BTreeMap<String, String>,
) -> Result<String, String> {
    let build = job.build_id;
    let all: Vec<Artifact> = agent
        .db(move |a| {
            a.store
                .read(|c| artifacts::list_artifacts(c, build))
                .map_err(anyhow::Error::from)
        })
        .await
        .map_err(|e| format!("cannot read artifacts: {e}"))?;
    let target = match with.get("path").filter(|p| !p.is_empty()) {
        Some(p) => archive::resolve(place.workspace, place.home, p)?,
        None => place.workspace.to_path_buf(),
    };
    let wanted: Vec<(Artifact, PathBuf)> = match with.get("name").filter(|n| !n.is_empty()) {
        Some(name) => {
            let found = all.iter().find(|a| &a.name == name).cloned().ok_or_else(|| {
                let names: Vec<&str> = all.iter().map(|a| a.name.as_str()).collect();
                format!(
                    "this build has no artifact named `{name}` (it has: {}); upload it in an earlier job this job `needs`",
                    if names.is_empty() { "none".to_owned() } else { names.join(", ") }
                )
            })?;
            vec![(found, target.clone())]
        }
        // Without a name, each artifact goes to a folder of its name.
        None => all
            .into_iter()
            .map(|a| {
                let dir = target.join(&a.name);
                (a, dir)
            })
            .collect(),
    };
    let root = agent.data.root().to_path_buf();
    let count = wanted.len();
    let files = tokio::task::spawn_blocking(move || {
        let mut files = 0;
        for (artifact, dir) in wanted {
            let archive_path = path(&root, artifact.build_id, &artifact.name);
            files += archive::extract(&archive_path, |name| Some(dir.join(name)))?;
        }
        Ok::<_, String>(files)
    })
    .await
    .map_err(|e| format!("download failed: {e}"))??;
    Ok(format!(
        "Downloaded {count} artifact(s), {files} files, to {}",
        target.display()
    ))
}

/// Removes artifacts whose retention ended; runs at start and every hour.
pub async fn clean_expired(agent: Arc<Agent>) {
    loop {
        let expired = agent
            .db(|a| {
                a.store
                    .read(|c| artifacts::expired_artifacts(c, hangar_core::store::now_ms()))
                    .map_err(anyhow::Error::from)
            })
            .await;
        match expired {
            Ok(expired) => {
                for artifact in expired {
                    let (build, name) = (artifact.build_id, artifact.name.clone());
                    let removed = agent
                        .db(move |a| {
                            a.store
                                .write(|tx| artifacts::delete_artifact(tx, build, &name))
                                .map_err(anyhow::Error::from)
                        })
                        .await;
                    if removed.is_ok() {
                        let file = path(agent.data.root(), artifact.build_id, &artifact.name);
                        let _ = tokio::fs::remove_file(&file).await;
                        if let Some(dir) = file.parent() {
                            // Only succeeds once the build's last artifact is gone.
                            let _ = tokio::fs::remove_dir(dir).await;
                        }
                        tracing::info!(build = %artifact.build_id, name = %artifact.name, "artifact expired and removed");
                    }
                }
            }
            Err(e) => tracing::warn!("cannot list expired artifacts: {e:#}"),
        }
        tokio::select! {
            _ = agent.builds.stop.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_secs(3600)) => {}
        }
    }
}

pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64;
    let mut unit = "B";
    for u in UNITS {
        if value < 1024.0 {
            break;
        }
        value /= 1024.0;
        unit = u;
    }
    format!("{value:.1} {unit}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_sizes() {
        assert!(check_name("build-output_1.2").is_ok());
        for bad in [
            "",
            ".hidden",
            "a/b",
            "a\\b",
            "x:y",
            "new\nline",
            &"a".repeat(201),
        ] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
        assert_eq!(human_size(10), "10 B");
        assert_eq!(human_size(1536), "1.5 KiB");
        assert_eq!(human_size(3 << 30), "3.0 GiB");
    }
}
