//! The workflow corpus: realistic files, each with the plans it must give.
//!
//! Each file under `corpus/` states its expectations in comments:
//!
//! ```text
//! # on push refs/heads/main changed:src/a.rs => build:2 deploy:1 ! release
//! # on pull_request main => none
//! # error 12:7 needs `nope`
//! ```
//!
//! `=> none` means the workflow is not selected; `id:N` is a job planned N
//! times (matrix); ids after `!` are blocked. Events: `push REF`,
//! `pull_request BASE` (action opened), `workflow_dispatch REF input:k=v`,
//! `schedule CRON_WITH_UNDERSCORES`.

mod fuzz;

use hangar_core::workflow::{self, Event, PlanContext};
use std::collections::BTreeMap;
use std::path::Path;

fn corpus() -> Vec<(String, String)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/workflows/corpus");
    let mut files: Vec<(String, String)> = std::fs::read_dir(&dir)
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
    files.sort();
    files
}

fn event(words: &[&str]) -> Event {
    let changed: Option<Vec<String>> = words
        .iter()
        .find_map(|w| w.strip_prefix("changed:"))
        .map(|list| list.split(',').map(String::from).collect());
    let sha = "0123456789abcdef0123456789abcdef01234567".to_owned();
    match words[0] {
        "push" => Event::Push {
            git_ref: words[1].to_owned(),
            before: "0".repeat(40),
            after: sha,
            changed_paths: changed,
        },
        "pull_request" => Event::PullRequest {
            action: "opened".into(),
            number: 7,
            base_ref: words[1].to_owned(),
            head_ref: "feature/x".into(),
            head_sha: sha,
            changed_paths: changed,
        },
        "workflow_dispatch" => Event::WorkflowDispatch {
            git_ref: words[1].to_owned(),
            sha,
            inputs: words
                .iter()
                .filter_map(|w| w.strip_prefix("input:"))
                .map(|kv| {
                    let (k, v) = kv.split_once('=').expect("input:k=v");
                    (k.to_owned(), v.to_owned())
                })
                .collect(),
        },
        "schedule" => Event::Schedule {
            cron: words[1].replace('_', " "),
            git_ref: "refs/heads/main".into(),
            sha,
        },
        other => panic!("unknown event {other}"),
    }
}

fn context() -> PlanContext {
    PlanContext {
        repository: "hangar/app".into(),
        actor: "mona".into(),
        vars: BTreeMap::from([("XCODE_VERSION".into(), "16.2".into())]),
        ..PlanContext::default()
    }
}

/// `id:count` for planned jobs, then `! id` for blocked ones.
fn summary(plan: &workflow::Plan) -> String {
    let mut counts: Vec<(String, usize)> = Vec::new();
    for job in &plan.jobs {
        match counts.iter_mut().find(|(id, _)| *id == job.id) {
            Some((_, n)) => *n += 1,
            None => counts.push((job.id.clone(), 1)),
        }
    }
    let mut out: Vec<String> = counts.iter().map(|(id, n)| format!("{id}:{n}")).collect();
    if !plan.blocked.is_empty() {
        out.push("!".into());
        out.extend(plan.blocked.iter().map(|b| b.id.clone()));
    }
    out.join(" ")
}

#[test]
fn corpus_plans_as_expected() {
    let files = corpus();
    assert!(files.len() >= 40, "the corpus has {} files", files.len());
    let results = workflow::discover(&files);
    let mut failures = Vec::new();
    let mut checked = 0;
    for ((path, text), result) in files.iter().zip(&results) {
        for line in text.lines() {
            if let Some(want) = line.strip_prefix("# error ") {
                let (at, message) = want.split_once(' ').expect("# error LINE:COL text");
                match result {
                    Ok(_) => failures.push(format!("{path}: parsed, expected error {want}")),
                    Err(e) => {
                        let hit = e.diagnostics.iter().any(|d| {
                            format!("{}:{}", d.pos.line, d.pos.col) == at
                                && d.message.contains(message)
                        });
                        if !hit {
                            failures.push(format!("{path}: expected `{want}`, got:\n{e}"));
                        }
                    }
                }
                checked += 1;
            }
            let Some(spec) = line.strip_prefix("# on ") else {
                continue;
            };
            checked += 1;
            let (ev, want) = spec.split_once(" => ").expect("# on EVENT => JOBS");
            let wf = match result {
                Ok(wf) => wf,
                Err(e) => {
                    failures.push(format!("{path}: does not parse:\n{e}"));
                    break;
                }
            };
            let got =
                match workflow::plan(wf, &event(&ev.split(' ').collect::<Vec<_>>()), &context()) {
                    Ok(None) => "none".to_owned(),
                    Ok(Some(plan)) => summary(&plan),
                    Err(e) => format!("error: {e}"),
                };
            if got != want.trim() {
                failures.push(format!("{path}: on {ev}: expected `{want}`, got `{got}`"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(checked >= 70, "only {checked} expectations");
}

fn plan_of(name: &str, ev: &[&str]) -> workflow::Plan {
    let files = corpus();
    let (path, text) = files
        .iter()
        .find(|(p, _)| p.ends_with(name))
        .expect("corpus file");
    let wf = workflow::parse(path, text).expect("parses");
    workflow::plan(&wf, &event(ev), &context())
        .expect("plans")
        .expect("selected")
}

#[test]
fn plans_carry_what_the_runner_needs() {
    let plan = plan_of("ios-matrix-devices.yml", &["push", "refs/heads/main"]);
    let job = &plan.jobs[0];
    assert_eq!(job.name, "UI tests on iPhone 16 (iOS 18.2)");
    assert_eq!(job.executor, workflow::Executor::Host);
    assert_eq!(job.strategy.to_json()["max-parallel"], 2);
    assert_eq!(job.strategy.to_json()["fail-fast"], false);
    assert_eq!(job.timeout_minutes, workflow::plan::DEFAULT_TIMEOUT_MINUTES);

    let plan = plan_of("ios-xcodebuild-test.yml", &["push", "refs/heads/main"]);
    let concurrency = plan.concurrency.expect("workflow concurrency");
    assert_eq!(
        (concurrency.group.as_str(), concurrency.cancel_in_progress),
        ("ios-refs/heads/main", true)
    );
    assert_eq!(plan.jobs[0].timeout_minutes, 45);
    assert_eq!(
        plan.jobs[0].steps[3].condition.as_deref(),
        Some("failure()")
    );

    let plan = plan_of("monorepo-ios.yml", &["push", "refs/heads/main"]);
    let step = &plan.jobs[0].steps[1];
    assert_eq!(step.shell.as_deref(), Some("bash"));
    assert_eq!(step.working_directory.as_deref(), Some("apps/ios"));

    let plan = plan_of("node-container.yml", &["push", "refs/heads/main"]);
    assert_eq!(
        plan.jobs[1].executor,
        workflow::Executor::Docker {
            image: "node:22-bookworm".into()
        }
    );

    let plan = plan_of("swift-package.yml", &["push", "refs/heads/main"]);
    assert!(
        matches!(plan.jobs[1].executor, workflow::Executor::Docker { .. }),
        "ubuntu-latest maps to Docker"
    );
    assert!(
        plan.jobs
            .iter()
            .any(|j| j.id == "lint" && j.continue_on_error)
    );

    let plan = plan_of(
        "macos-app-notarize.yml",
        &["workflow_dispatch", "refs/heads/main", "input:dry-run=true"],
    );
    assert_eq!(plan.run_name, "Notarize stable by mona");
    assert_eq!(plan.inputs.to_json()["dry-run"], true);

    let plan = plan_of(
        "rust-uses-toolchain-action.yml",
        &["push", "refs/heads/main"],
    );
    let reason = &plan.blocked[0].reasons[0];
    assert!(
        reason.contains("dtolnay/rust-toolchain@stable") && reason.contains("actions/checkout"),
        "{reason}"
    );

    let plan = plan_of("unsupported-events.yml", &["push", "refs/heads/main"]);
    assert_eq!(plan.notes.len(), 2, "release and issues are reported");
}

#[test]
fn one_bad_file_does_not_stop_the_others() {
    let files = vec![
        (
            ".github/workflows/good.yml".to_owned(),
            "on: push\njobs:\n  a:\n    runs-on: macos\n    steps:\n      - run: x\n".to_owned(),
        ),
        (
            ".github/workflows/bad.yaml".to_owned(),
            "on: push\njobs: [\n".to_owned(),
        ),
        (
            ".hangar/workflows/also.yml".to_owned(),
            "on: push\njobs:\n  b:\n    runs-on: macos\n    steps:\n      - run: y\n".to_owned(),
        ),
        (
            "src/not-a-workflow.yml".to_owned(),
            "nonsense: [".to_owned(),
        ),
    ];
    let results = workflow::discover(&files);
    assert_eq!(results.len(), 3);
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 2);
    let err = results
        .iter()
        .find_map(|r| r.as_ref().err())
        .expect("one error");
    assert!(
        err.to_string().starts_with(".github/workflows/bad.yaml:"),
        "{err}"
    );
}
