//! The Hangar desktop app: a tray icon and a window on the agent's own
//! dashboard. It owns no logic the agent could own: it finds (or starts) the
//! agent, shows what its API says, and calls its API.
//!
//! Run with arguments (`hangar-app serve`, `hangar-app build list`, ...) the
//! binary is the `hangar` CLI, so the app bundle can also run the agent as a
//! login service.

mod link;
mod notify;
mod sse;
mod status;
mod tray;
mod window;

use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use tauri::{Manager as _, RunEvent, WindowEvent};

use link::Link;

/// What the app keeps between events.
pub struct Desktop {
    pub link: Link,
    /// The last look at the agent (None until the first one, or while it is unreachable).
    last: Mutex<Option<status::Snapshot>>,
    /// Whether the agent answered the last read.
    online: AtomicBool,
    tray: Mutex<tray::Shown>,
    /// Kept open: on X11 the clipboard's owner must live to serve pastes.
    clipboard: Mutex<Option<arboard::Clipboard>>,
}

impl Desktop {
    fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
        mutex.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn copy(&self, text: &str) -> anyhow::Result<()> {
        let mut slot = Self::lock(&self.clipboard);
        if slot.is_none() {
            *slot = Some(arboard::Clipboard::new()?);
        }
        if let Some(clipboard) = slot.as_mut() {
            clipboard.set_text(text)?;
        }
        Ok(())
    }
}

pub fn main() -> ExitCode {
    if std::env::args_os().len() > 1 {
        return hangar_agent::cli::main();
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("HANGAR_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> anyhow::Result<()> {
    let data_dir = link::data_dir()?;
    let app = tauri::Builder::default()
        .plugin(tauri_plugin_single_instance::init(|app, _args, _cwd| {
            window::show(app, None);
        }))
        .setup(move |app| {
            let link = tauri::async_runtime::block_on(Link::connect(data_dir))?;
            let desktop = Arc::new(Desktop {
                link,
                last: Mutex::new(None),
                online: AtomicBool::new(false),
                tray: Mutex::new(tray::Shown::default()),
                clipboard: Mutex::new(None),
            });
            app.manage(desktop.clone());
            tray::create(app.handle(), &desktop)?;
            window::show(app.handle(), None);
            tray::watch(app.handle().clone(), desktop);
            Ok(())
        })
        .on_window_event(|window, event| {
            // Closing the window keeps the app (and the agent) in the tray.
            if let WindowEvent::CloseRequested { api, .. } = event {
                api.prevent_close();
                window::hide(window);
            }
        })
        .build(tauri::generate_context!())?;
    app.run(|_, event| {
        // Without windows the app lives on in the tray; only Quit ends it.
        if let RunEvent::ExitRequested {
            code: None, api, ..
        } = event
        {
            api.prevent_exit();
        }
    });
    Ok(())
}

/// Stops the agent the app started (if any), then exits.
fn quit(app: &tauri::AppHandle, desktop: Arc<Desktop>) {
    let app = app.clone();
    tauri::async_runtime::spawn(async move {
        desktop.link.stop_owned().await;
        app.exit(0);
    });
}
