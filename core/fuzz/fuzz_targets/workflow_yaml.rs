//! Any bytes as a workflow file: parse, lint and plan must never panic.
#![no_main]

use hangar_core::workflow::{self, Event, PlanContext};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(wf) = workflow::parse(".github/workflows/fuzz.yml", text) else {
        return;
    };
    let event = Event::Push {
        git_ref: "refs/heads/main".into(),
        before: String::new(),
        after: String::new(),
        changed_paths: Some(vec!["src/a.rs".into()]),
    };
    let _ = workflow::plan(&wf, &event, &PlanContext::default());
});
