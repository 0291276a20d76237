//! Parse + lint + plan of the whole workflow corpus, in files per second.
//!
//! A plain `main` (no criterion) keeps the build light; run with
//! `cargo bench -p hangar-core --bench workflows`.

use hangar_core::workflow::{self, Event, PlanContext};
use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

fn main() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/workflows/corpus");
    let files: Vec<(String, String)> = std::fs::read_dir(&dir)
        .expect("corpus dir")
        .map(|e| {
            let path = e.expect("entry").path();
            let name = path
                .file_name()
                .expect("name")
                .to_string_lossy()
                .into_owned();
            (
                format!(".github/workflows/{name}"),
                std::fs::read_to_string(&path).expect("read"),
            )
        })
        .collect();
    let event = Event::Push {
        git_ref: "refs/heads/main".into(),
        before: "0".repeat(40),
        after: "1".repeat(40),
        changed_paths: Some(vec!["src/main.rs".into(), "apps/ios/App.swift".into()]),
    };
    let context = PlanContext {
        repository: "hangar/app".into(),
        ..PlanContext::default()
    };
    let mut rounds = 0u64;
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(3) {
        for wf in workflow::discover(&files).iter().flatten() {
            let _ = black_box(workflow::plan(wf, &event, &context));
        }
        rounds += 1;
    }
    let elapsed = start.elapsed().as_secs_f64();
    let per_second = (rounds * files.len() as u64) as f64 / elapsed;
    println!(
        "workflows: {} files x {rounds} rounds in {elapsed:.2}s = {per_second:.0} files/s (parse + lint + plan)",
        files.len()
    );
}
