//! The desktop app end to end, as a user would see it: a real agent, the real
//! app binary under Xvfb and a private D-Bus session (`xvfb-run` +
//! `dbus-run-session`, which stop Xvfb and the bus themselves). The window
//! is checked through X (its title, a screenshot that is not blank) and the
//! tray through the menu it exports over D-Bus (`com.canonical.dbusmenu`),
//! the way a panel reads and clicks it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Set in the re-run of this test inside Xvfb and the D-Bus session.
const INSIDE: &str = "HANGAR_DESKTOP_TEST_INSIDE";

#[test]
fn window_shows_the_dashboard_and_the_tray_menu_works() {
    if std::env::var_os(INSIDE).is_none() {
        rerun_headless("window_shows_the_dashboard_and_the_tray_menu_works");
        return;
    }
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    let agent = runtime.block_on(start_agent(dir.path()));
    let url = agent.agent.url.clone();
    create_repo(dir.path(), "acme/app");

    let mut app = App::start(dir.path());
    app.wait_log(&format!("page loaded: {url}/"));

    // The window: found by its title, which follows the page's title. The
    // dashboard titles its Overview page only once signed in, so this also
    // shows the app signed its window in (without a token in the URL).
    let window = wait_for(&mut app, "the signed-in dashboard's window", || {
        find_window("Hangar").filter(|w| w.title.contains("Overview"))
    });
    // The page is drawn: the screenshot of the window is not one flat colour.
    let shot = dir.path().join("window.png");
    let spread = wait_for(&mut app, "a drawn page", || {
        let spread = screenshot_spread(&window.id, &shot);
        (spread > 0.01).then_some(spread)
    });
    eprintln!("window {window:?}: grey standard deviation {spread:.3}");
    save_artefact(&shot);

    // The tray menu, read the way a panel reads it.
    let menu = wait_for(&mut app, "the tray menu", find_menu);
    let items = wait_for(&mut app, "the menu filled from the agent", || {
        let items = menu.layout();
        items
            .iter()
            .any(|i| i.label == "Idle: all builds green")
            .then_some(items)
    });
    let labels: Vec<&str> = items.iter().map(|i| i.label.as_str()).collect();
    for expected in [
        "No builds yet",
        "Pause the build queue",
        "Open dashboard",
        "Copy clone URL",
        "acme/app",
        "Start agent at login",
        "Quit Hangar",
    ] {
        assert!(labels.contains(&expected), "{expected:?} not in {labels:?}");
    }
    eprintln!("app idle memory: {}", app.memory_report());

    // Pausing from the tray pauses the agent's queue, and the menu follows.
    menu.click(&items, "Pause the build queue");
    let items = wait_for(&mut app, "the paused menu", || {
        let items = menu.layout();
        items
            .iter()
            .any(|i| i.label == "Resume the build queue")
            .then_some(items)
    });
    assert!(
        agent.agent.builds.paused(),
        "the agent's queue is not paused"
    );
    assert!(
        items.iter().any(|i| i.label == "Queue paused"),
        "status line: {items:?}"
    );

    // The tray follows the agent's event stream: a change made elsewhere
    // (here the REST API) shows in the menu without any polling.
    let token =
        hangar_agent::agent::read_agent_file(&hangar_core::data_dir::DataDir::new(dir.path()))
            .expect("agent.json")
            .token;
    runtime.block_on(async {
        let response = reqwest::Client::new()
            .post(format!("{url}/api/v1/queue/resume"))
            .bearer_auth(&token)
            .send()
            .await
            .expect("resume the queue");
        assert!(response.status().is_success(), "resume: {response:?}");
    });
    wait_for(&mut app, "the resumed menu", || {
        let items = menu.layout();
        items
            .iter()
            .any(|i| i.label == "Pause the build queue")
            .then_some(())
    });

    // The agent restarts: the tray says it is away, then reconnects to the
    // new agent on the same address and shows its state again.
    runtime.block_on(agent.shutdown());
    let away = format!("Agent not answering at {url}");
    wait_for(&mut app, "the agent-away status", || {
        menu.layout().iter().any(|i| i.label == away).then_some(())
    });
    let address = url.trim_start_matches("http://").to_owned();
    let agent = runtime.block_on(start_agent_at(dir.path(), &address));
    assert_eq!(agent.agent.url, url, "the agent came back elsewhere");
    let items = wait_for(&mut app, "the menu after the agent came back", || {
        let items = menu.layout();
        items
            .iter()
            .any(|i| i.label == "Idle: all builds green")
            .then_some(items)
    });

    // Quit ends the app (the agent it attached to keeps running).
    menu.click(&items, "Quit Hangar");
    let status = app.wait_exit(Duration::from_secs(20));
    assert!(status.success(), "app exited with {status}");
    runtime.block_on(async {
        let health = reqwest::get(format!("{url}/healthz")).await;
        assert!(health.is_ok_and(|r| r.status().is_success()));
        agent.shutdown().await;
    });
}

/// Runs this test again inside a virtual X server and a private D-Bus session.
fn rerun_headless(name: &str) {
    let exe = std::env::current_exe().expect("test executable");
    let status = Command::new("xvfb-run")
        .args([
            "-a",
            "-s",
            "-screen 0 1280x800x24",
            "dbus-run-session",
            "--",
        ])
        .arg(exe)
        .args(["--exact", name, "--nocapture", "--test-threads=1"])
        .env(INSIDE, "1")
        .status()
        .expect("run xvfb-run (Debian: xvfb xauth dbus-x11; scripts/test installs them)");
    assert!(status.success(), "the headless run failed: {status}");
}

async fn start_agent(dir: &Path) -> hangar_agent::Running {
    start_agent_at(dir, "127.0.0.1:0").await
}

async fn start_agent_at(dir: &Path, address: &str) -> hangar_agent::Running {
    let mut settings = hangar_core::config::Settings::default();
    settings.set("http", address).expect("http setting");
    settings.no_ssh = true;
    hangar_agent::start(hangar_agent::Config {
        data_dir: dir.to_owned(),
        settings,
    })
    .await
    .expect("agent starts")
}

/// Creates a repository through the CLI (the app binary is the CLI too).
fn create_repo(dir: &Path, name: &str) {
    let output = Command::new(env!("CARGO_BIN_EXE_hangar-app"))
        .args(["repo", "create", name])
        .env("HANGAR_DATA_DIR", dir)
        .output()
        .expect("run the CLI");
    assert!(
        output.status.success(),
        "repo create: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Polls `probe` until it answers (60 s), failing early if the app died.
fn wait_for<T>(app: &mut App, what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(found) = probe() {
            return found;
        }
        app.check_alive();
        assert!(
            Instant::now() < deadline,
            "no {what} after 60 s; app log:\n{}",
            app.log()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Copies a file to `$HANGAR_ARTEFACTS` (CI keeps it), when set.
fn save_artefact(file: &Path) {
    if let Some(dir) = std::env::var_os("HANGAR_ARTEFACTS") {
        let dir = PathBuf::from(dir);
        std::fs::create_dir_all(&dir).expect("artefact dir");
        let name = file.file_name().expect("file name");
        std::fs::copy(file, dir.join(name)).expect("save artefact");
    }
}

/// The app under test. Dropping it kills it.
struct App {
    child: Option<Child>,
    log: PathBuf,
}

impl App {
    fn start(data_dir: &Path) -> App {
        let log = data_dir.join("app.log");
        let file = std::fs::File::create(&log).expect("app log");
        let child = Command::new(env!("CARGO_BIN_EXE_hangar-app"))
            .env("HANGAR_DATA_DIR", data_dir)
            .env("HANGAR_LOG", "info")
            // Xvfb has no GPU: WebKit must draw in software.
            .env("WEBKIT_DISABLE_COMPOSITING_MODE", "1")
            .env("WEBKIT_DISABLE_DMABUF_RENDERER", "1")
            .stdout(file.try_clone().expect("log"))
            .stderr(file)
            .spawn()
            .expect("start hangar-app");
        App {
            child: Some(child),
            log,
        }
    }

    fn pid(&self) -> u32 {
        self.child.as_ref().expect("app running").id()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn check_alive(&mut self) {
        let child = self.child.as_mut().expect("app running");
        if let Some(status) = child.try_wait().expect("wait") {
            panic!("the app exited with {status}; log:\n{}", self.log());
        }
    }

    fn wait_log(&mut self, line: &str) {
        let log = self.log.clone();
        wait_for(self, line, || log_contains(&log, line));
    }

    fn wait_exit(&mut self, limit: Duration) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("app running");
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("the app did not exit; log:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// RSS of the app and its WebKit helper processes, from /proc.
    fn memory_report(&self) -> String {
        let mut parts = Vec::new();
        let mut total = 0;
        for pid in family(self.pid()) {
            let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
            let name = field(&status, "Name:").unwrap_or_default();
            let kb: u64 = field(&status, "VmRSS:")
                .and_then(|v| v.split_whitespace().next().map(str::to_owned))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            total += kb;
            parts.push(format!("{name} {} MiB", kb / 1024));
        }
        format!("{} MiB RSS ({})", total / 1024, parts.join(", "))
    }
}

fn log_contains(log: &Path, line: &str) -> Option<()> {
    std::fs::read_to_string(log)
        .ok()
        .filter(|text| text.contains(line))
        .map(drop)
}

fn field(status: &str, key: &str) -> Option<String> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .map(|v| v.trim().to_owned())
}

/// `pid` and all its descendants.
fn family(pid: u32) -> Vec<u32> {
    let mut parents: Vec<(u32, u32)> = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Ok(p) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let stat = std::fs::read_to_string(format!("/proc/{p}/stat")).unwrap_or_default();
        // The fields after the `(comm)`: state, ppid, ...
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok());
        if let Some(ppid) = ppid {
            parents.push((p, ppid));
        }
    }
    let mut out = vec![pid];
    let mut i = 0;
    while i < out.len() {
        let parent = out[i];
        out.extend(
            parents
                .iter()
                .filter(|(_, pp)| *pp == parent)
                .map(|(p, _)| *p),
        );
        i += 1;
    }
    out
}

impl Drop for App {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[derive(Debug)]
struct XWindow {
    id: String,
    title: String,
}

/// A top-level X window whose title starts with `prefix` (from `xwininfo -tree`).
fn find_window(prefix: &str) -> Option<XWindow> {
    let output = Command::new("xwininfo")
        .args(["-root", "-tree"])
        .output()
        .expect("run xwininfo (Debian: x11-utils)");
    let text = String::from_utf8_lossy(&output.stdout);
    text.lines().find_map(|line| {
        // `     0x1e00003 "Hangar": ("hangar-app" "Hangar-app")  1200x760+0+0  +0+0`
        let line = line.trim();
        let (id, rest) = line.split_once(' ')?;
        let title = rest.strip_prefix('"')?.split_once("\":")?.0;
        title.starts_with(prefix).then(|| XWindow {
            id: id.to_owned(),
            title: title.to_owned(),
        })
    })
}

/// Screenshots an X window and returns the standard deviation of its grey
/// levels (0 for a blank window, 0..1).
fn screenshot_spread(window: &str, file: &Path) -> f64 {
    let ok = Command::new("import")
        .args(["-window", window])
        .arg(file)
        .status()
        .expect("run import (Debian: imagemagick)")
        .success();
    if !ok {
        return 0.0;
    }
    let output = Command::new("convert")
        .arg(file)
        .args([
            "-colorspace",
            "gray",
            "-format",
            "%[fx:standard_deviation]",
            "info:",
        ])
        .output()
        .expect("run convert");
    String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .unwrap_or(0.0)
}

/// A `com.canonical.dbusmenu` menu on the session bus.
struct DbusMenu {
    dest: String,
    path: String,
}

#[derive(Debug)]
struct MenuItem {
    id: i32,
    label: String,
}

/// Finds the exported tray menu: the object implementing
/// `com.canonical.dbusmenu` on any connection of the bus.
fn find_menu() -> Option<DbusMenu> {
    let names = gdbus(&[
        "call",
        "--dest",
        "org.freedesktop.DBus",
        "--object-path",
        "/org/freedesktop/DBus",
        "--method",
        "org.freedesktop.DBus.ListNames",
    ])?;
    for name in names.split('\'').filter(|n| n.starts_with(':')) {
        let Some(tree) = gdbus(&[
            "introspect",
            "--dest",
            name,
            "--object-path",
            "/",
            "--recurse",
            "--only-properties",
        ]) else {
            continue;
        };
        let mut node = None;
        for line in tree.lines() {
            let line = line.trim();
            if let Some(path) = line.strip_prefix("node ") {
                node = Some(path.trim_end_matches(" {").to_owned());
            } else if line.starts_with("interface com.canonical.dbusmenu")
                && let Some(path) = &node
            {
                return Some(DbusMenu {
                    dest: name.to_owned(),
                    path: path.clone(),
                });
            }
        }
    }
    None
}

impl DbusMenu {
    /// Every item of the menu (submenus included), from `GetLayout`.
    fn layout(&self) -> Vec<MenuItem> {
        let text = gdbus(&[
            "call",
            "--dest",
            &self.dest,
            "--object-path",
            &self.path,
            "--method",
            "com.canonical.dbusmenu.GetLayout",
            // Ends gdbus's options: -1 (all levels) is an argument.
            "--",
            "0",
            "-1",
            "[]",
        ])
        .unwrap_or_default();
        parse_layout(&text)
    }

    /// Clicks the item labelled `label`, as a panel does.
    fn click(&self, items: &[MenuItem], label: &str) {
        let item = items
            .iter()
            .find(|i| i.label == label)
            .unwrap_or_else(|| panic!("no {label:?} in {items:?}"));
        let id = item.id.to_string();
        gdbus(&[
            "call",
            "--dest",
            &self.dest,
            "--object-path",
            &self.path,
            "--method",
            "com.canonical.dbusmenu.Event",
            &id,
            "clicked",
            "<0>",
            "0",
        ])
        .unwrap_or_else(|| panic!("clicking {label:?} failed"));
    }
}

/// Items from GetLayout's text form: each is `(ID, {'label': <'TEXT'>, ...}, [...])`.
fn parse_layout(text: &str) -> Vec<MenuItem> {
    let mut items = Vec::new();
    let key = "'label': <'";
    let mut from = 0;
    while let Some(at) = text[from..].find(key) {
        let start = from + at + key.len();
        let Some(len) = text[start..].find("'>") else {
            break;
        };
        let label = text[start..start + len].to_owned();
        let head = &text[..from + at];
        let id = head
            .rfind('{')
            .map(|brace| head[..brace].trim_end_matches([' ', ',']))
            .and_then(|before| {
                let digits = before.rsplit(['(', ' ']).next()?;
                digits.parse().ok()
            });
        if let Some(id) = id {
            items.push(MenuItem { id, label });
        }
        from = start + len;
    }
    items
}

fn gdbus(args: &[&str]) -> Option<String> {
    let output = Command::new("gdbus")
        .arg(args[0])
        .arg("--session")
        .args(&args[1..])
        .stderr(Stdio::null())
        .output()
        .expect("run gdbus (Debian: libglib2.0-bin)");
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).into_owned())
}

#[test]
fn layout_text_is_parsed() {
    let text = "(uint32 7, (0, {'children-display': <'submenu'>}, [<(1, {'label': <'Idle: all builds green'>, 'enabled': <false>}, [])>, <(2, {'type': <'separator'>}, [])>, <(3, {'label': <'Copy clone URL'>, 'children-display': <'submenu'>}, [<(4, {'label': <'acme/app'>}, [])>])>]))";
    let items = parse_layout(text);
    let got: Vec<(i32, &str)> = items.iter().map(|i| (i.id, i.label.as_str())).collect();
    assert_eq!(
        got,
        [
            (1, "Idle: all builds green"),
            (3, "Copy clone URL"),
            (4, "acme/app")
        ]
    );
}
