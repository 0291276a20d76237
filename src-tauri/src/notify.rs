//! Desktop notifications. On Linux, clicking one opens its dashboard page.

use tauri::AppHandle;

use crate::status::Notice;

/// Shows `notice` without blocking the caller (a missing notification
/// service is logged, not fatal).
pub fn show(app: &AppHandle, notice: Notice) {
    let app = app.clone();
    std::thread::spawn(move || {
        let mut notification = notify_rust::Notification::new();
        notification
            .appname("Hangar")
            .summary(&notice.title)
            .body(&notice.body);
        #[cfg(all(unix, not(target_os = "macos")))]
        notification.action("default", "Open");
        match notification.show() {
            #[cfg(all(unix, not(target_os = "macos")))]
            Ok(handle) => handle.wait_for_action(|action| {
                if action == "default" {
                    crate::window::show(&app, Some(&notice.page));
                }
            }),
            #[cfg(target_os = "macos")]
            Ok(_) => drop(app),
            Err(e) => tracing::warn!("cannot show a notification ({}): {e}", notice.title),
        }
    });
}
