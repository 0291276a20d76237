//! Picking files by the path patterns of `upload-artifact` and `cache`, and
//! packing them into plain tar archives (no compression: build outputs such
//! as DerivedData are large and mostly compressed already; speed wins).

use std::fs::File;
use std::io::{BufReader, BufWriter};
use std::path::{Component, Path, PathBuf};

use hangar_core::workflow::glob::Glob;

/// Most files one archive may hold.
const MAX_FILES: usize = 200_000;

/// One path line, resolved: relative lines are under the workspace, `~/`
/// under the runner's home (when the job has one on this host).
pub fn resolve(workspace: &Path, home: Option<&Path>, line: &str) -> Result<PathBuf, String> {
    let rest = match line.strip_prefix("~/") {
        Some(rest) => rest,
        None if line == "~" => "",
        None => return Ok(workspace.join(line)),
    };
    match home {
        Some(home) => Ok(home.join(rest)),
        None => Err(format!(
            "path {line:?}: `~` is inside the container, out of the agent's reach; use a path in the workspace"
        )),
    }
}

/// The path lines of an action input: one per line, blank lines skipped.
pub fn lines(text: &str) -> Vec<&str> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect()
}

/// Files picked by path patterns, with the directory they are named from.
#[derive(Debug, Default)]
pub struct Selection {
    /// The deepest directory holding every pattern's base.
    pub root: PathBuf,
    /// Absolute paths of the files (and symlinks), sorted, no duplicates.
    pub files: Vec<PathBuf>,
}

/// Files matching `patterns` (lines as `actions/upload-artifact` takes them:
/// files, directories, `*`/`**` globs; a leading `!` excludes). Hidden files
/// and directories under a pattern's base are skipped unless `hidden`.
pub fn select(
    workspace: &Path,
    home: Option<&Path>,
    patterns: &str,
    hidden: bool,
) -> Result<Selection, String> {
    let mut includes = Vec::new();
    let mut excludes = Vec::new();
    for line in lines(patterns) {
        match line.strip_prefix('!') {
            Some(rest) => excludes.push(pattern(&resolve(workspace, home, rest.trim())?)?),
            None => includes.push(pattern(&resolve(workspace, home, line)?)?),
        }
    }
    if includes.is_empty() {
        return Err("`path` names no files: give one file, directory or pattern per line".into());
    }
    let mut files = Vec::new();
    let mut bases = Vec::new();
    for (base, _) in &includes {
        let Ok(meta) = std::fs::symlink_metadata(base) else {
            continue;
        };
        if meta.is_dir() {
            bases.push(base.clone());
            walk(base, hidden, &mut files)?;
        } else {
            bases.push(base.parent().unwrap_or(base).to_path_buf());
            files.push(base.clone());
        }
    }
    // A glob's base holds more than the glob matches.
    files.retain(|f| includes.iter().any(|(b, g)| covered(f, b, g.as_ref())));
    files.retain(|f| !excludes.iter().any(|(b, g)| covered(f, b, g.as_ref())));
    files.sort();
    files.dedup();
    let root = common_ancestor(&bases).unwrap_or_else(|| workspace.to_path_buf());
    Ok(Selection { root, files })
}

/// A pattern's literal base (up to the first wildcard) and its glob, if any.
fn pattern(path: &Path) -> Result<(PathBuf, Option<Glob>), String> {
    let text = path.to_string_lossy();
    if !text.contains(['*', '?', '[']) {
        return Ok((normalize(path), None));
    }
    let mut base = PathBuf::new();
    for part in path.components() {
        if part.as_os_str().to_string_lossy().contains(['*', '?', '[']) {
            break;
        }
        base.push(part);
    }
    let glob = Glob::new(&text).map_err(|e| format!("path pattern {text:?}: {e}"))?;
    Ok((normalize(&base), Some(glob)))
}

/// Drops `.` and folds `..` so that prefixes compare as paths.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

fn covered(file: &Path, base: &Path, glob: Option<&Glob>) -> bool {
    match glob {
        Some(glob) => glob.matches(&file.to_string_lossy()),
        None => file.starts_with(base),
    }
}

/// Every file and symlink under `dir` (symlinked directories are not followed).
fn walk(dir: &Path, hidden: bool, out: &mut Vec<PathBuf>) -> Result<(), String> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
    for entry in entries {
        let entry = entry.map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
        if !hidden && entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let path = entry.path();
        let kind = entry
            .file_type()
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        if kind.is_dir() {
            walk(&path, hidden, out)?;
        } else {
            out.push(path);
        }
        if out.len() > MAX_FILES {
            return Err(format!(
                "more than {MAX_FILES} files under {}: narrow the `path`",
                dir.display()
            ));
        }
    }
    Ok(())
}

fn common_ancestor(paths: &[PathBuf]) -> Option<PathBuf> {
    let mut common = paths.first()?.clone();
    for path in &paths[1..] {
        while !path.starts_with(&common) {
            if !common.pop() {
                return None;
            }
        }
    }
    Some(common)
}

/// Writes `entries` (file on disk, name in the archive) to `archive` through
/// a temporary file, so a half-written archive is never seen. Returns the
/// archive's size in bytes.
pub fn write(archive: &Path, entries: &[(PathBuf, PathBuf)]) -> Result<u64, String> {
    let dir = archive
        .parent()
        .ok_or_else(|| format!("{} has no folder", archive.display()))?;
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let temp = tempfile::NamedTempFile::new_in(dir)
        .map_err(|e| format!("cannot write in {}: {e}", dir.display()))?;
    let mut builder = tar::Builder::new(BufWriter::new(temp.as_file()));
    builder.follow_symlinks(false);
    for (file, name) in entries {
        builder
            .append_path_with_name(file, name)
            .map_err(|e| format!("cannot archive {}: {e}", file.display()))?;
    }
    builder
        .into_inner()
        .and_then(|mut w| std::io::Write::flush(&mut w))
        .map_err(|e| format!("cannot write {}: {e}", archive.display()))?;
    temp.persist(archive)
        .map_err(|e| format!("cannot write {}: {e}", archive.display()))?;
    Ok(std::fs::metadata(archive).map(|m| m.len()).unwrap_or(0))
}

/// Unpacks `archive`, placing each entry where `place` says (None skips it).
/// Entries naming a parent directory or an absolute path are refused.
pub fn extract(archive: &Path, place: impl Fn(&Path) -> Option<PathBuf>) -> Result<usize, String> {
    let file =
        File::open(archive).map_err(|e| format!("cannot open {}: {e}", archive.display()))?;
    let mut tar = tar::Archive::new(BufReader::new(file));
    tar.set_preserve_mtime(true);
    let mut count = 0;
    let entries = tar
        .entries()
        .map_err(|e| format!("cannot read {}: {e}", archive.display()))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| format!("cannot read {}: {e}", archive.display()))?;
        let name = entry
            .path()
            .map_err(|e| format!("bad entry in {}: {e}", archive.display()))?
            .into_owned();
        if name
            .components()
            .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
        {
            return Err(format!(
                "{} holds an unsafe path {}",
                archive.display(),
                name.display()
            ));
        }
        let Some(target) = place(&name) else { continue };
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
        }
        // Replace what is there: a restored cache wins over stale files.
        if std::fs::symlink_metadata(&target).is_ok_and(|m| !m.is_dir()) {
            let _ = std::fs::remove_file(&target);
        }
        entry
            .unpack(&target)
            .map_err(|e| format!("cannot write {}: {e}", target.display()))?;
        count += 1;
    }
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(root: &Path, rel: &str) {
        let path = root.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, rel).unwrap();
    }

    fn names(sel: &Selection) -> Vec<String> {
        sel.files
            .iter()
            .map(|f| f.strip_prefix(&sel.root).unwrap().display().to_string())
            .collect()
    }

    #[test]
    fn selects_like_upload_artifact() {
        let dir = tempfile::tempdir().unwrap();
        let ws = dir.path();
        for f in [
            "dist/app.js",
            "dist/app.js.map",
            "dist/.cache/x",
            "dist/img/a.png",
            "logs/a.log",
            "logs/b.txt",
            "README",
        ] {
            touch(ws, f);
        }
        let home = Some(ws.join("home"));
        let home = home.as_deref();
        let sel = select(ws, home, "dist", false).unwrap();
        assert_eq!(names(&sel), ["app.js", "app.js.map", "img/a.png"]);
        let sel = select(ws, home, "dist\n!dist/**/*.map\n", true).unwrap();
        assert_eq!(names(&sel), [".cache/x", "app.js", "img/a.png"]);
        let sel = select(ws, home, "logs/*.log\nREADME", false).unwrap();
        assert_eq!(names(&sel), ["README", "logs/a.log"]);
        let sel = select(ws, home, "nothing-here", false).unwrap();
        assert!(sel.files.is_empty());
        assert!(select(ws, home, "\n \n", false).is_err());
    }

    #[test]
    fn archives_round_trip_and_refuse_escapes() {
        let dir = tempfile::tempdir().unwrap();
        let ws = dir.path().join("ws");
        touch(&ws, "a/b.txt");
        touch(&ws, "c.txt");
        let sel = select(&ws, None, "a\nc.txt", false).unwrap();
        let entries: Vec<_> = sel
            .files
            .iter()
            .map(|f| (f.clone(), f.strip_prefix(&sel.root).unwrap().to_path_buf()))
            .collect();
        let tar = dir.path().join("out/x.tar");
        assert!(write(&tar, &entries).unwrap() > 0);
        let out = dir.path().join("restored");
        assert_eq!(extract(&tar, |name| Some(out.join(name))).unwrap(), 2);
        assert_eq!(
            std::fs::read_to_string(out.join("a/b.txt")).unwrap(),
            "a/b.txt"
        );
        assert_eq!(std::fs::read_to_string(out.join("c.txt")).unwrap(), "c.txt");

        // An archive naming `../x` is refused, and nothing lands outside.
        let mut header = tar::Header::new_gnu();
        header.set_size(1);
        header.set_mode(0o644);
        let evil = dir.path().join("evil.tar");
        let mut b = tar::Builder::new(File::create(&evil).unwrap());
        let name = b"../escaped";
        header.as_gnu_mut().unwrap().name[..name.len()].copy_from_slice(name);
        header.set_cksum();
        b.append(&header, &b"x"[..]).unwrap();
        b.finish().unwrap();
        let err = extract(&evil, |name| Some(out.join(name))).unwrap_err();
        assert!(err.contains("unsafe path"), "{err}");
        assert!(!out.parent().unwrap().join("escaped").exists());
    }
}
