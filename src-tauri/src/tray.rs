//! The tray icon and its menu: the agent's state at a glance, the latest
//! builds, and the few actions a build host's owner needs without a window.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tauri::image::Image;
use tauri::menu::{
    CheckMenuItem, IsMenuItem, Menu, MenuEvent, MenuItem, PredefinedMenuItem, Submenu,
};
use tauri::tray::TrayIconBuilder;
use tauri::{AppHandle, Manager as _, Wry};

use crate::Desktop;
use crate::sse::{Backoff, Parser};
use crate::status::{Refresh, Snapshot, TrayState};

const TRAY: &str = "hangar";
/// How long the event stream may stay silent: the agent writes a keepalive
/// every 15 s, so this means the connection is dead.
const SILENCE: Duration = Duration::from_secs(45);
/// Events this close together share one read of the REST API (a push
/// queues several builds at once).
const SETTLE: Duration = Duration::from_millis(150);
/// How long a first click on Quit (with builds running) waits for the second.
const QUIT_CONFIRM: Duration = Duration::from_secs(15);

/// What the tray shows now, to rebuild the menu only when it changes.
#[derive(Debug, Default)]
pub struct Shown {
    menu: Option<Model>,
    icon: Option<&'static str>,
    /// Set by a first click on Quit while the app's own agent runs builds.
    quit_armed: Option<Instant>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Model {
    status: String,
    /// (build id, label), newest first.
    builds: Vec<(String, String)>,
    /// None while the agent does not answer.
    paused: Option<bool>,
    /// (repository, clone URL).
    repos: Vec<(String, String)>,
    start_at_login: bool,
    quit: String,
}

pub fn create(app: &AppHandle, desktop: &Arc<Desktop>) -> anyhow::Result<()> {
    let model = model(desktop, None, Vec::new(), false);
    TrayIconBuilder::with_id(TRAY)
        .icon(icon("paused")?)
        .tooltip("Hangar")
        .menu(&menu(app, &model)?)
        .show_menu_on_left_click(true)
        .on_menu_event(on_menu_event)
        .build(app)?;
    Desktop::lock(&desktop.tray).menu = Some(model);
    Ok(())
}

fn icon(state: &str) -> tauri::Result<Image<'static>> {
    let bytes: &'static [u8] = match state {
        "idle" => include_bytes!("../../icons/tray-idle.png"),
        "building" => include_bytes!("../../icons/tray-building.png"),
        "failed" => include_bytes!("../../icons/tray-failed.png"),
        _ => include_bytes!("../../icons/tray-paused.png"),
    };
    Image::from_bytes(bytes)
}

/// Follows the agent's event stream for as long as the app runs: reads the
/// REST API when an event says the tray's state changed (and at every
/// connect), updates the tray and sends notifications for what changed.
/// A dropped stream (the agent restarting, say) is reopened with backoff.
pub fn watch(app: AppHandle, desktop: Arc<Desktop>) {
    tauri::async_runtime::spawn(async move {
        let mut backoff = Backoff::default();
        loop {
            let mut parser = Parser::default();
            if let Err(e) = follow(&app, &desktop, &mut parser, &mut backoff).await {
                tracing::warn!("agent event stream: {e:#}");
            }
            desktop.online.store(false, Ordering::SeqCst);
            refresh(&app, &desktop, None);
            tokio::time::sleep(backoff.next(parser.retry)).await;
        }
    });
}

/// Follows one connection of the event stream until it drops.
async fn follow(
    app: &AppHandle,
    desktop: &Arc<Desktop>,
    parser: &mut Parser,
    backoff: &mut Backoff,
) -> anyhow::Result<()> {
    let mut response = desktop.link.events().await?;
    let mut pending = Refresh::default();
    let mut due: Option<tokio::time::Instant> = None;
    loop {
        let wait = due.map_or(SILENCE, |d| {
            d.saturating_duration_since(tokio::time::Instant::now())
        });
        match tokio::time::timeout(wait, response.chunk()).await {
            Ok(chunk) => {
                let Some(chunk) = chunk? else {
                    anyhow::bail!("the agent closed the stream");
                };
                for event in parser.push(&chunk)? {
                    if event.name == "hello" {
                        backoff.reset();
                    }
                    let what = Refresh::after(&event.name);
                    if what.any() && due.is_none() {
                        due = Some(tokio::time::Instant::now() + SETTLE);
                    }
                    pending = pending.and(what);
                }
            }
            Err(_) if due.is_some() => {}
            Err(_) => anyhow::bail!("no event or keepalive for {} s", SILENCE.as_secs()),
        }
        if due.is_some_and(|d| d <= tokio::time::Instant::now()) {
            due = None;
            read(app, desktop, std::mem::take(&mut pending)).await;
        }
    }
}

/// Reads what `what` names from the REST API, notifies about what changed
/// since the last read, and redraws the tray.
async fn read(app: &AppHandle, desktop: &Arc<Desktop>, what: Refresh) {
    let repos = if what.repos {
        desktop
            .link
            .clone_urls()
            .await
            .inspect_err(|e| tracing::warn!("cannot list repositories: {e:#}"))
            .ok()
    } else {
        None
    };
    if what.snapshot {
        match desktop.link.snapshot().await {
            Ok(now) => {
                let notices = {
                    let mut last = Desktop::lock(&desktop.last);
                    let notices = crate::status::notices(last.as_ref(), &now);
                    *last = Some(now);
                    notices
                };
                desktop.online.store(true, Ordering::SeqCst);
                for notice in notices {
                    crate::notify::show(app, notice);
                }
            }
            Err(e) => {
                tracing::warn!("cannot reach the agent: {e:#}");
                desktop.online.store(false, Ordering::SeqCst);
            }
        }
    }
    refresh(app, desktop, repos);
}

/// Redraws the tray from the last snapshot (when anything changed). `repos`
/// replaces the clone-URL list when given.
fn refresh(app: &AppHandle, desktop: &Arc<Desktop>, repos: Option<Vec<(String, String)>>) {
    // The last snapshot stays the baseline for notifications while the
    // agent is away; the tray only shows it while the agent answers.
    let snapshot = Desktop::lock(&desktop.last)
        .clone()
        .filter(|_| desktop.online.load(Ordering::SeqCst));
    let armed = Desktop::lock(&desktop.tray)
        .quit_armed
        .is_some_and(|t| t.elapsed() < QUIT_CONFIRM);
    let repos = repos.unwrap_or_else(|| {
        Desktop::lock(&desktop.tray)
            .menu
            .as_ref()
            .map(|m| m.repos.clone())
            .unwrap_or_default()
    });
    let next = model(desktop, snapshot.as_ref(), repos, armed);
    let icon_name = snapshot.as_ref().map_or("failed", |s| s.state().as_str());
    let Some(tray) = app.tray_by_id(TRAY) else {
        return;
    };
    let mut shown = Desktop::lock(&desktop.tray);
    if shown.menu.as_ref() != Some(&next) {
        match menu(app, &next) {
            Ok(menu) => {
                if let Err(e) = tray.set_menu(Some(menu)) {
                    tracing::warn!("cannot update the tray menu: {e}");
                }
                let _ = tray.set_tooltip(Some(format!("Hangar: {}", next.status)));
                shown.menu = Some(next);
            }
            Err(e) => tracing::warn!("cannot build the tray menu: {e}"),
        }
    }
    if shown.icon != Some(icon_name) {
        match icon(icon_name).and_then(|i| tray.set_icon(Some(i))) {
            Ok(()) => shown.icon = Some(icon_name),
            Err(e) => tracing::warn!("cannot set the tray icon: {e}"),
        }
    }
}

fn running_builds(snapshot: Option<&Snapshot>) -> usize {
    snapshot.map_or(0, |s| {
        s.builds.iter().filter(|b| b.status == "running").count()
    })
}

fn model(
    desktop: &Desktop,
    snapshot: Option<&Snapshot>,
    repos: Vec<(String, String)>,
    quit_armed: bool,
) -> Model {
    let running = running_builds(snapshot);
    let quit = if desktop.link.owns_agent && running > 0 {
        if quit_armed {
            format!("Quit now and stop {running} running build(s)")
        } else {
            format!("Quit… ({running} build(s) running here)")
        }
    } else {
        "Quit Hangar".to_owned()
    };
    Model {
        status: match snapshot {
            Some(s) => s.status_line(),
            None if Desktop::lock(&desktop.tray).menu.is_none() => "Connecting…".to_owned(),
            None => format!("Agent not answering at {}", desktop.link.url),
        },
        builds: snapshot
            .map(|s| {
                s.builds
                    .iter()
                    .take(5)
                    .map(|b| (b.id.clone(), b.label()))
                    .collect()
            })
            .unwrap_or_default(),
        paused: snapshot.map(|s| s.state() == TrayState::Paused),
        repos,
        start_at_login: hangar_agent::service::installed(),
        quit,
    }
}

fn menu(app: &AppHandle, model: &Model) -> tauri::Result<Menu<Wry>> {
    let mut items: Vec<Box<dyn IsMenuItem<Wry>>> = Vec::new();
    items.push(Box::new(MenuItem::with_id(
        app,
        "status",
        &model.status,
        false,
        None::<&str>,
    )?));
    items.push(Box::new(PredefinedMenuItem::separator(app)?));
    if model.builds.is_empty() {
        items.push(Box::new(MenuItem::with_id(
            app,
            "no-builds",
            "No builds yet",
            false,
            None::<&str>,
        )?));
    }
    for (id, label) in &model.builds {
        items.push(Box::new(MenuItem::with_id(
            app,
            format!("build:{id}"),
            label,
            true,
            None::<&str>,
        )?));
    }
    items.push(Box::new(PredefinedMenuItem::separator(app)?));
    let (queue_id, queue_label) = match model.paused {
        Some(true) => ("queue:resume", "Resume the build queue"),
        _ => ("queue:pause", "Pause the build queue"),
    };
    items.push(Box::new(MenuItem::with_id(
        app,
        queue_id,
        queue_label,
        model.paused.is_some(),
        None::<&str>,
    )?));
    items.push(Box::new(MenuItem::with_id(
        app,
        "open",
        "Open dashboard",
        true,
        None::<&str>,
    )?));
    let clone_items = model
        .repos
        .iter()
        .map(|(name, url)| MenuItem::with_id(app, format!("clone:{url}"), name, true, None::<&str>))
        .collect::<tauri::Result<Vec<_>>>()?;
    let clone_refs: Vec<&dyn IsMenuItem<Wry>> = clone_items
        .iter()
        .map(|i| i as &dyn IsMenuItem<Wry>)
        .collect();
    items.push(Box::new(Submenu::with_id_and_items(
        app,
        "clone",
        "Copy clone URL",
        !clone_items.is_empty(),
        &clone_refs,
    )?));
    items.push(Box::new(CheckMenuItem::with_id(
        app,
        "login",
        "Start agent at login",
        true,
        model.start_at_login,
        None::<&str>,
    )?));
    items.push(Box::new(PredefinedMenuItem::separator(app)?));
    items.push(Box::new(MenuItem::with_id(
        app,
        "quit",
        &model.quit,
        true,
        None::<&str>,
    )?));
    let refs: Vec<&dyn IsMenuItem<Wry>> = items.iter().map(|i| i.as_ref()).collect();
    Menu::with_items(app, &refs)
}

fn on_menu_event(app: &AppHandle, event: MenuEvent) {
    let desktop = app.state::<Arc<Desktop>>().inner().clone();
    let id = event.id().as_ref().to_owned();
    let id = id.as_str();
    tracing::info!(item = id, "tray menu");
    if let Some(build) = id.strip_prefix("build:") {
        crate::window::show(app, Some(&format!("/builds/{build}")));
    } else if let Some(url) = id.strip_prefix("clone:") {
        if let Err(e) = desktop.copy(url) {
            tracing::error!("cannot copy to the clipboard: {e:#}");
        }
    } else if let Some(action) = id.strip_prefix("queue:") {
        let action = action.to_owned();
        let path = format!("/api/v1/queue/{action}");
        tauri::async_runtime::spawn(async move {
            // The agent's `queue` event then refreshes the tray.
            if let Err(e) = desktop.link.post(&path).await {
                tracing::error!("cannot {action} the queue: {e:#}");
            }
        });
    } else if id == "open" {
        crate::window::show(app, None);
    } else if id == "login" {
        toggle_start_at_login(&desktop);
        refresh(app, &desktop, None);
    } else if id == "quit" {
        let running = running_builds(Desktop::lock(&desktop.last).as_ref());
        let armed = {
            let mut shown = Desktop::lock(&desktop.tray);
            let armed = shown.quit_armed.is_some_and(|t| t.elapsed() < QUIT_CONFIRM);
            if !armed {
                shown.quit_armed = Some(Instant::now());
            }
            armed
        };
        if desktop.link.owns_agent && running > 0 && !armed {
            // The first click only warns: quitting stops this app's agent
            // and with it the running builds.
            crate::notify::show(
                app,
                crate::status::Notice {
                    title: format!("{running} build(s) are running"),
                    body: "Quitting stops them. Choose Quit again to quit anyway.".to_owned(),
                    page: "/".to_owned(),
                },
            );
            refresh(app, &desktop, None);
            return;
        }
        crate::quit(app, desktop);
    }
}

/// Installs or removes the login service. When this app runs the agent
/// itself, the service only takes over at the next login (two agents cannot
/// share the data dir's port).
fn toggle_start_at_login(desktop: &Desktop) {
    let result = if hangar_agent::service::installed() {
        hangar_agent::service::uninstall().map(|_| ())
    } else {
        std::env::current_exe()
            .map_err(anyhow::Error::from)
            .and_then(|exe| {
                let spec = hangar_agent::service::Spec::new(exe, desktop.link.data_dir.clone());
                hangar_agent::service::install(&spec, !desktop.link.owns_agent)
            })
            .map(|_| ())
    };
    if let Err(e) = result {
        tracing::error!("cannot change start at login: {e:#}");
    }
}
