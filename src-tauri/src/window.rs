//! The one window: the agent's dashboard, signed in by the app.

use std::sync::Arc;

use tauri::{AppHandle, Manager as _, WebviewUrl, WebviewWindowBuilder, Window};

use crate::Desktop;

const LABEL: &str = "main";

/// Shows the window (creating it on first use), on `page` (a dashboard path
/// such as `/builds/ID`) when given.
pub fn show(app: &AppHandle, page: Option<&str>) {
    if let Err(e) = try_show(app, page) {
        tracing::error!("cannot open the window: {e:#}");
    }
}

fn try_show(app: &AppHandle, page: Option<&str>) -> anyhow::Result<()> {
    let desktop = app.state::<Arc<Desktop>>();
    let url: tauri::Url = format!("{}{}", desktop.link.url, page.unwrap_or("/")).parse()?;
    #[cfg(target_os = "macos")]
    app.set_activation_policy(tauri::ActivationPolicy::Regular)?;
    if let Some(window) = app.get_webview_window(LABEL) {
        if page.is_some() {
            window.navigate(url)?;
        }
        window.show()?;
        window.unminimize()?;
        window.set_focus()?;
        return Ok(());
    }
    WebviewWindowBuilder::new(app, LABEL, WebviewUrl::External(url))
        .title("Hangar")
        .inner_size(1200.0, 760.0)
        .min_inner_size(640.0, 420.0)
        .initialization_script(crate::link::sign_in_script(
            &desktop.link.url,
            desktop.link.token(),
        ))
        // The window's title follows the page's, so the OS (and the
        // desktop test) can tell which page is shown.
        .on_document_title_changed(|window, title| {
            let title = if title.trim().is_empty() {
                "Hangar".to_owned()
            } else {
                format!("Hangar — {title}")
            };
            if let Err(e) = window.set_title(&title) {
                tracing::warn!("cannot set the window title: {e}");
            }
        })
        .on_page_load(|_, payload| {
            if matches!(payload.event(), tauri::webview::PageLoadEvent::Finished) {
                tracing::info!("page loaded: {}", payload.url());
            }
        })
        .build()?;
    Ok(())
}

/// Hides the window; on macOS the app then leaves the Dock (a menu-bar app).
pub fn hide(window: &Window) {
    if let Err(e) = window.hide() {
        tracing::warn!("cannot hide the window: {e}");
    }
    #[cfg(target_os = "macos")]
    if let Err(e) = window
        .app_handle()
        .set_activation_policy(tauri::ActivationPolicy::Accessory)
    {
        tracing::warn!("cannot leave the Dock: {e}");
    }
}
