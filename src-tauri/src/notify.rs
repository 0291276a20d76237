//! Desktop notifications. On Linux (D-Bus) clicking one opens its dashboard
//! page; on macOS they are posted with `osascript` (Notification Center).

use tauri::AppHandle;

use crate::status::Notice;

/// Shows `notice` without blocking the caller (a missing notification
/// service is logged, not fatal).
#[cfg(not(target_os = "macos"))]
pub fn show(app: &AppHandle, notice: Notice) {
    let app = app.clone();
    std::thread::spawn(move || {
        let mut notification = notify_rust::Notification::new();
        notification
            .appname("Hangar")
            .summary(&notice.title)
            .body(&notice.body)
            .action("default", "Open");
        match notification.show() {
            Ok(handle) => handle.wait_for_action(|action| {
                if action == "default" {
                    crate::window::show(&app, Some(&notice.page));
                }
            }),
            Err(e) => tracing::warn!("cannot show a notification ({}): {e}", notice.title),
        }
    });
}

#[cfg(target_os = "macos")]
pub fn show(_app: &AppHandle, notice: Notice) {
    let script = format!(
        "display notification {} with title \"Hangar\" subtitle {}",
        applescript_string(&notice.body),
        applescript_string(&notice.title)
    );
    std::thread::spawn(move || {
        let result = std::process::Command::new("osascript")
            .args(["-e", &script])
            .status();
        if !result.is_ok_and(|s| s.success()) {
            tracing::warn!("cannot show a notification ({})", notice.title);
        }
    });
}

/// An AppleScript string literal.
#[cfg(target_os = "macos")]
fn applescript_string(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}
