//! Running the agent at login, in the user's session (code signing and the
//! login Keychain need it, so never as a system daemon): a launchd
//! LaunchAgent on macOS, a systemd user unit elsewhere. The file generators
//! are pure and tested on every platform; installing runs `launchctl` or
//! `systemctl --user`.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Context as _;

/// The launchd label (and plist file name).
pub const LAUNCHD_LABEL: &str = "dev.hangar.agent";
/// The systemd user unit's name.
pub const SYSTEMD_UNIT: &str = "hangar.service";
/// PATH for the service when the installing process has none: launchd and
/// systemd start services with a bare PATH, and builds need Homebrew's tools.
const DEFAULT_PATH: &str = "/opt/homebrew/bin:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin";

/// What the service runs: `PROGRAM serve --data-dir DATA_DIR` with `PATH`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spec {
    pub program: PathBuf,
    pub data_dir: PathBuf,
    pub path: String,
}

impl Spec {
    /// A spec with the caller's PATH (what the user's shell finds, builds find).
    pub fn new(program: PathBuf, data_dir: PathBuf) -> Spec {
        let path = std::env::var("PATH")
            .ok()
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| DEFAULT_PATH.to_owned());
        Spec {
            program,
            data_dir,
            path,
        }
    }

    fn args(&self) -> anyhow::Result<Vec<String>> {
        Ok(vec![
            utf8(&self.program)?.to_owned(),
            "serve".to_owned(),
            "--data-dir".to_owned(),
            utf8(&self.data_dir)?.to_owned(),
        ])
    }

    /// Where the service writes the agent's output.
    pub fn log_file(&self) -> PathBuf {
        self.data_dir.join("agent.log")
    }
}

fn utf8(path: &Path) -> anyhow::Result<&str> {
    let text = path
        .to_str()
        .with_context(|| format!("{} is not UTF-8; move it to a plain path", path.display()))?;
    anyhow::ensure!(
        !text.chars().any(char::is_control),
        "{text:?} contains control characters; use a plain path"
    );
    Ok(text)
}

/// The LaunchAgent plist (XML): runs at login and is restarted if it dies,
/// only in the Aqua (GUI) session, logging to the data dir.
pub fn launchd_plist(spec: &Spec) -> anyhow::Result<Vec<u8>> {
    use plist::Value;
    let log = spec.log_file();
    let log = utf8(&log)?;
    let mut env = plist::Dictionary::new();
    env.insert("PATH".into(), spec.path.clone().into());
    let mut dict = plist::Dictionary::new();
    dict.insert("Label".into(), LAUNCHD_LABEL.into());
    dict.insert(
        "ProgramArguments".into(),
        Value::Array(spec.args()?.into_iter().map(Value::from).collect()),
    );
    dict.insert("RunAtLoad".into(), true.into());
    dict.insert("KeepAlive".into(), true.into());
    dict.insert("LimitLoadToSessionType".into(), "Aqua".into());
    dict.insert("ProcessType".into(), "Interactive".into());
    dict.insert("WorkingDirectory".into(), utf8(&spec.data_dir)?.into());
    dict.insert("EnvironmentVariables".into(), Value::Dictionary(env));
    dict.insert("StandardOutPath".into(), log.into());
    dict.insert("StandardErrorPath".into(), log.into());
    let mut out = Vec::new();
    plist::to_writer_xml(&mut out, &Value::Dictionary(dict))?;
    out.push(b'\n');
    Ok(out)
}

/// The systemd user unit: starts with the user's session, restarts on failure.
pub fn systemd_unit(spec: &Spec) -> anyhow::Result<String> {
    let exec = spec
        .args()?
        .iter()
        .map(|a| systemd_quote(a))
        .collect::<Vec<_>>()
        .join(" ");
    Ok(format!(
        "[Unit]\n\
         Description=Hangar build host agent\n\
         After=network-online.target\n\
         \n\
         [Service]\n\
         ExecStart={exec}\n\
         Environment={}\n\
         Restart=on-failure\n\
         RestartSec=5\n\
         TimeoutStopSec=30\n\
         \n\
         [Install]\n\
         WantedBy=default.target\n",
        systemd_quote(&format!("PATH={}", spec.path))
    ))
}

/// One word of a unit file's command line: double-quoted, with the
/// characters systemd would expand (`\`, `"`, `%` specifiers, `$` variables)
/// escaped. Callers reject control characters first.
fn systemd_quote(word: &str) -> String {
    let mut out = String::with_capacity(word.len() + 2);
    out.push('"');
    for c in word.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '%' => out.push_str("%%"),
            '$' => out.push_str("$$"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Which service manager a file is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Launchd,
    Systemd,
}

impl Kind {
    /// This platform's service manager.
    pub fn native() -> Kind {
        if cfg!(target_os = "macos") {
            Kind::Launchd
        } else {
            Kind::Systemd
        }
    }

    /// The generated file for `spec`.
    pub fn render(self, spec: &Spec) -> anyhow::Result<Vec<u8>> {
        match self {
            Kind::Launchd => launchd_plist(spec),
            Kind::Systemd => systemd_unit(spec).map(String::into_bytes),
        }
    }

    /// Where the file goes: `~/Library/LaunchAgents/dev.hangar.agent.plist`
    /// or `$XDG_CONFIG_HOME/systemd/user/hangar.service`.
    pub fn path(self) -> anyhow::Result<PathBuf> {
        let home = std::env::var_os("HOME")
            .filter(|h| !h.is_empty())
            .map(PathBuf::from)
            .context("HOME is not set")?;
        Ok(match self {
            Kind::Launchd => home
                .join("Library/LaunchAgents")
                .join(format!("{LAUNCHD_LABEL}.plist")),
            Kind::Systemd => std::env::var_os("XDG_CONFIG_HOME")
                .filter(|d| !d.is_empty())
                .map(PathBuf::from)
                .unwrap_or_else(|| home.join(".config"))
                .join("systemd/user")
                .join(SYSTEMD_UNIT),
        })
    }
}

/// Whether the login service is installed (its file exists).
pub fn installed() -> bool {
    Kind::native().path().is_ok_and(|p| p.exists())
}

/// Writes the service file and registers it; `start_now` also starts the
/// agent now (otherwise it starts at the next login). Returns the file.
pub fn install(spec: &Spec, start_now: bool) -> anyhow::Result<PathBuf> {
    let kind = Kind::native();
    let path = kind.path()?;
    let body = kind.render(spec)?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    std::fs::write(&path, body).with_context(|| format!("cannot write {}", path.display()))?;
    platform::register(&path, start_now)?;
    Ok(path)
}

/// Stops and removes the service. Returns whether it was installed.
pub fn uninstall() -> anyhow::Result<bool> {
    let path = Kind::native().path()?;
    if !path.exists() {
        return Ok(false);
    }
    platform::unregister(&path)?;
    std::fs::remove_file(&path).with_context(|| format!("cannot remove {}", path.display()))?;
    Ok(true)
}

/// The service's state as its manager reports it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Status {
    pub installed: bool,
    pub file: String,
    /// `running`, `stopped`, ... (what launchd or systemd says), when installed.
    pub state: Option<String>,
}

pub fn status() -> anyhow::Result<Status> {
    let path = Kind::native().path()?;
    let installed = path.exists();
    Ok(Status {
        installed,
        file: path.display().to_string(),
        state: installed.then(platform::state),
    })
}

/// Runs a service manager command; its output is the error when it fails.
fn run(program: &str, args: &[&str]) -> anyhow::Result<String> {
    let output = Command::new(program)
        .args(args)
        .output()
        .with_context(|| format!("cannot run {program}"))?;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    anyhow::ensure!(
        output.status.success(),
        "`{program} {}` failed: {}{}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr).trim(),
        stdout.trim()
    );
    Ok(stdout)
}

#[cfg(target_os = "macos")]
mod platform {
    use std::path::Path;

    use super::{LAUNCHD_LABEL, run};

    /// `gui/UID`: the user's GUI session domain.
    fn domain() -> String {
        // SAFETY: getuid has no preconditions and cannot fail.
        format!("gui/{}", unsafe { libc::getuid() })
    }

    pub fn register(path: &Path, start_now: bool) -> anyhow::Result<()> {
        if !start_now {
            // launchd loads ~/Library/LaunchAgents at the next login.
            return Ok(());
        }
        // Reinstalling: unload the old definition first (fails if not loaded).
        let _ = run(
            "launchctl",
            &["bootout", &format!("{}/{LAUNCHD_LABEL}", domain())],
        );
        let path = path.to_string_lossy();
        run("launchctl", &["bootstrap", &domain(), &path]).map(drop)
    }

    pub fn unregister(_path: &Path) -> anyhow::Result<()> {
        // Not loaded is fine: the file goes either way.
        let _ = run(
            "launchctl",
            &["bootout", &format!("{}/{LAUNCHD_LABEL}", domain())],
        );
        Ok(())
    }

    pub fn state() -> String {
        match run(
            "launchctl",
            &["print", &format!("{}/{LAUNCHD_LABEL}", domain())],
        ) {
            Ok(text) => text
                .lines()
                .find_map(|l| l.trim().strip_prefix("state = "))
                .unwrap_or("loaded")
                .to_owned(),
            Err(_) => "not loaded (starts at next login)".to_owned(),
        }
    }
}

#[cfg(not(target_os = "macos"))]
mod platform {
    use std::path::Path;

    use super::{SYSTEMD_UNIT, run};

    pub fn register(_path: &Path, start_now: bool) -> anyhow::Result<()> {
        run("systemctl", &["--user", "daemon-reload"])?;
        let mut args = vec!["--user", "enable"];
        if start_now {
            args.push("--now");
        }
        args.push(SYSTEMD_UNIT);
        run("systemctl", &args).map(drop)
    }

    pub fn unregister(_path: &Path) -> anyhow::Result<()> {
        run("systemctl", &["--user", "disable", "--now", SYSTEMD_UNIT])?;
        Ok(())
    }

    pub fn state() -> String {
        // `is-active` exits non-zero for inactive units but still says so.
        std::process::Command::new("systemctl")
            .args(["--user", "is-active", SYSTEMD_UNIT])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .ok()
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "unknown (systemctl --user did not answer)".to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> Spec {
        Spec {
            program: "/Applications/Hangar.app/Contents/MacOS/hangar-app".into(),
            data_dir: "/Users/dana/Library/Application Support/Hangar".into(),
            path: "/opt/homebrew/bin:/usr/bin:/bin".into(),
        }
    }

    #[test]
    fn launchd_plist_matches_the_bundled_template() {
        // bundle/dev.hangar.agent.plist is this output for the example spec:
        // the template documents what `hangar service install` writes.
        let got = String::from_utf8(launchd_plist(&spec()).unwrap()).unwrap();
        let template = include_str!("../../bundle/dev.hangar.agent.plist");
        assert_eq!(got, template);
    }

    #[test]
    fn launchd_plist_reads_back() {
        let bytes = launchd_plist(&spec()).unwrap();
        let value: plist::Value = plist::from_bytes(&bytes).unwrap();
        let dict = value.as_dictionary().unwrap();
        assert_eq!(dict["Label"].as_string(), Some(LAUNCHD_LABEL));
        assert_eq!(dict["RunAtLoad"].as_boolean(), Some(true));
        assert_eq!(dict["KeepAlive"].as_boolean(), Some(true));
        assert_eq!(dict["LimitLoadToSessionType"].as_string(), Some("Aqua"));
        let args: Vec<&str> = dict["ProgramArguments"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_string().unwrap())
            .collect();
        assert_eq!(
            args,
            [
                "/Applications/Hangar.app/Contents/MacOS/hangar-app",
                "serve",
                "--data-dir",
                "/Users/dana/Library/Application Support/Hangar"
            ]
        );
        assert_eq!(
            dict["StandardErrorPath"].as_string(),
            Some("/Users/dana/Library/Application Support/Hangar/agent.log")
        );
    }

    #[test]
    fn systemd_unit_quotes_what_systemd_would_expand() {
        let mut spec = spec();
        spec.data_dir = "/home/d/100% \"data\" $HOME\\x".into();
        let unit = systemd_unit(&spec).unwrap();
        let exec = unit
            .lines()
            .find_map(|l| l.strip_prefix("ExecStart="))
            .unwrap();
        assert_eq!(
            exec,
            r#""/Applications/Hangar.app/Contents/MacOS/hangar-app" "serve" "--data-dir" "/home/d/100%% \"data\" $$HOME\\x""#
        );
        assert!(unit.contains("\nEnvironment=\"PATH=/opt/homebrew/bin:/usr/bin:/bin\"\n"));
        assert!(unit.contains("\nRestart=on-failure\n"));
        assert!(unit.ends_with("[Install]\nWantedBy=default.target\n"));
    }

    #[test]
    fn control_characters_in_paths_are_refused() {
        let mut spec = spec();
        spec.data_dir = "/tmp/a\nExecStartPre=/bin/evil".into();
        let err = systemd_unit(&spec).unwrap_err().to_string();
        assert!(err.contains("control characters"), "{err}");
        assert!(launchd_plist(&spec).is_err());
    }

    #[test]
    fn files_go_where_the_service_managers_look() {
        // Only reads HOME/XDG_CONFIG_HOME; asserts the suffixes, which do not
        // depend on the environment the test runs in.
        assert!(
            Kind::Launchd
                .path()
                .unwrap()
                .ends_with("Library/LaunchAgents/dev.hangar.agent.plist")
        );
        assert!(
            Kind::Systemd
                .path()
                .unwrap()
                .ends_with("systemd/user/hangar.service")
        );
    }

    proptest::proptest! {
        /// Any printable path survives the plist as one argument, unchanged.
        #[test]
        fn plist_keeps_any_printable_path(dir in "/[^\\p{Cc}]{0,80}") {
            let mut spec = spec();
            spec.data_dir = dir.clone().into();
            let bytes = launchd_plist(&spec).unwrap();
            let value: plist::Value = plist::from_bytes(&bytes).unwrap();
            let args = value.as_dictionary().unwrap()["ProgramArguments"].as_array().unwrap().clone();
            proptest::prop_assert_eq!(args[3].as_string(), Some(dir.as_str()));
        }
    }
}
