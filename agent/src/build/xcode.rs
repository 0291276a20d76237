//! `maxim-lobanov/setup-xcode`, built in: picks an installed Xcode by
//! `xcode-version` and points the job's later steps at it with
//! `DEVELOPER_DIR`, instead of `sudo xcode-select`, so that jobs running at
//! once can use different Xcodes.
//!
//! Finding Xcodes is plain file reading (the app bundles' `version.plist`),
//! so it is tested on Linux against a folder laid out like `/Applications`;
//! only a Mac has real ones.

use std::path::{Path, PathBuf};

/// An Xcode found on the host.
#[derive(Debug, Clone, PartialEq)]
pub struct Xcode {
    pub path: PathBuf,
    pub version: Vec<u64>,
    pub beta: bool,
}

impl Xcode {
    pub fn version_text(&self) -> String {
        let parts: Vec<String> = self.version.iter().map(u64::to_string).collect();
        parts.join(".") + if self.beta { " beta" } else { "" }
    }

    /// The `DEVELOPER_DIR` of this Xcode.
    pub fn developer_dir(&self) -> PathBuf {
        self.path.join("Contents/Developer")
    }
}

/// Every `Xcode*.app` in `applications` with a readable version.
pub fn installed(applications: &Path) -> Vec<Xcode> {
    let Ok(entries) = std::fs::read_dir(applications) else {
        return Vec::new();
    };
    let mut found: Vec<Xcode> = entries
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !(name.starts_with("Xcode") && name.ends_with(".app")) {
                return None;
            }
            let path = entry.path();
            let info = plist::Value::from_file(path.join("Contents/version.plist")).ok()?;
            let text = info
                .as_dictionary()?
                .get("CFBundleShortVersionString")?
                .as_string()?;
            let version = parse_version(text)?;
            // Betas install as `Xcode-beta.app` (or `Xcode_16.3_beta.app` with
            // `xcodes`); build numbers do not tell them apart reliably.
            let beta = name.to_ascii_lowercase().contains("beta");
            Some(Xcode {
                path,
                version,
                beta,
            })
        })
        .collect();
    found.sort_by(|a, b| a.version.cmp(&b.version).then(b.beta.cmp(&a.beta)));
    found
}

fn parse_version(text: &str) -> Option<Vec<u64>> {
    let parts: Option<Vec<u64>> = text.trim().split('.').map(|p| p.parse().ok()).collect();
    parts.filter(|p| !p.is_empty() && p.len() <= 4)
}

/// The newest Xcode matching `wanted`: `latest`, `latest-stable`, a version
/// (`16`, `16.2`, `16.2.1`: every part given must match) or `^16.1` (at
/// least 16.1, below 17).
pub fn pick<'a>(xcodes: &'a [Xcode], wanted: &str) -> Result<&'a Xcode, String> {
    let wanted = wanted.trim();
    let matches = |x: &Xcode| -> Result<bool, String> {
        Ok(match wanted {
            "latest" => true,
            "latest-stable" => !x.beta,
            _ => {
                let (caret, text) = match wanted.strip_prefix('^') {
                    Some(rest) => (true, rest),
                    None => (false, wanted),
                };
                let want = parse_version(text).ok_or_else(|| {
                    format!(
                        "`xcode-version: {wanted}` is not a version: use latest, latest-stable, 16.2 or ^16.1"
                    )
                })?;
                if caret {
                    x.version.first() == want.first() && x.version >= want && !x.beta
                } else {
                    x.version.len() >= want.len() && x.version[..want.len()] == want[..]
                }
            }
        })
    };
    let mut best = None;
    for x in xcodes {
        if matches(x)? {
            best = Some(x);
        }
    }
    best.ok_or_else(|| {
        let have: Vec<String> = xcodes.iter().map(Xcode::version_text).collect();
        if have.is_empty() {
            "no Xcode is installed in /Applications: install one from the App Store or developer.apple.com (setup-xcode needs macOS)".to_owned()
        } else {
            format!(
                "no installed Xcode matches `xcode-version: {wanted}` (installed: {})",
                have.join(", ")
            )
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app(dir: &Path, name: &str, version: &str, build: &str) {
        let contents = dir.join(name).join("Contents");
        std::fs::create_dir_all(&contents).unwrap();
        let mut dict = plist::Dictionary::new();
        dict.insert("CFBundleShortVersionString".into(), version.into());
        dict.insert("ProductBuildVersion".into(), build.into());
        plist::Value::Dictionary(dict)
            .to_file_xml(contents.join("version.plist"))
            .unwrap();
    }

    #[test]
    fn picks_like_setup_xcode() {
        let dir = tempfile::tempdir().unwrap();
        app(dir.path(), "Xcode_15.4.app", "15.4", "15F31d");
        app(dir.path(), "Xcode_16.1.app", "16.1", "16B40");
        app(dir.path(), "Xcode_16.2.app", "16.2", "16C5032a");
        app(dir.path(), "Xcode-beta.app", "26.0", "17A5241e");
        app(dir.path(), "Other.app", "1.0", "1");
        std::fs::create_dir_all(dir.path().join("Xcode_broken.app")).unwrap();
        let xcodes = installed(dir.path());
        assert_eq!(xcodes.len(), 4);
        let version = |w: &str| pick(&xcodes, w).map(Xcode::version_text);
        assert_eq!(version("latest").unwrap(), "26.0 beta");
        assert_eq!(version("latest-stable").unwrap(), "16.2");
        assert_eq!(version("16").unwrap(), "16.2");
        assert_eq!(version("16.1").unwrap(), "16.1");
        assert_eq!(version("^16.0").unwrap(), "16.2");
        assert_eq!(version("15.4").unwrap(), "15.4");
        let err = version("14").unwrap_err();
        assert!(
            err.contains("installed: 15.4, 16.1, 16.2, 26.0 beta"),
            "{err}"
        );
        assert!(version("sixteen").unwrap_err().contains("not a version"));
        assert!(
            pick(&[], "latest")
                .unwrap_err()
                .contains("no Xcode is installed")
        );
        assert_eq!(
            pick(&xcodes, "15.4").unwrap().developer_dir(),
            dir.path().join("Xcode_15.4.app/Contents/Developer")
        );
    }
}
