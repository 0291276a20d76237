//! Fuzzing the workflow parser, planner and expression evaluator with
//! proptest: corpus files mutated at random (cut, spliced, re-indented,
//! sprinkled with YAML and expression syntax) and expressions built from
//! their grammar's tokens must never panic.
//!
//! By default each property runs a few hundred cases, as part of the normal
//! suite. `HANGAR_FUZZ_SECS=600 cargo test --release -p hangar-core --test
//! workflows fuzz` keeps generating cases for that long (the 10-minute run).

use std::path::Path;
use std::time::{Duration, Instant};

use hangar_core::workflow::expr::{self, Context, Value};
use hangar_core::workflow::{self, Event, PlanContext};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

/// Fragments that steer mutations toward the interesting parts of the grammar.
const YAML_BITS: &[&str] = &[
    "\n",
    "\n  ",
    "\n    ",
    ": ",
    "- ",
    "[",
    "]",
    "{",
    "}",
    ",",
    "'",
    "\"",
    "|",
    ">",
    "&a ",
    "*a",
    "!!str ",
    "#",
    "~",
    "null",
    "true",
    "on:",
    "jobs:",
    "steps:",
    "run: ",
    "uses: ",
    "needs: ",
    "if: ",
    "matrix:",
    "include:",
    "exclude:",
    "strategy:",
    "runs-on: ",
    "with:",
    "env:",
    "outputs:",
    "branches:",
    "paths:",
    "tags:",
    "cron: '",
    "workflow_dispatch:",
    "inputs:",
    "${{ ",
    " }}",
    "${{",
    "}}",
    "needs.",
    "matrix.",
    "github.",
    "steps.",
    "inputs.",
    "fromJSON('",
    "toJSON(",
    "hashFiles('",
    "')",
    "success()",
    "failure()",
    "always()",
    "**",
    "!",
    "\t",
    "\u{feff}",
    "é",
    "0x1F",
    "1e309",
    "-0",
    ".inf",
    "<<: *a",
];

const EXPR_BITS: &[&str] = &[
    "github.ref",
    "matrix.os",
    "matrix",
    "needs.a.outputs.x",
    "steps.s.outputs.y",
    "env.A",
    "inputs.n",
    "'str'",
    "''",
    "'it''s'",
    "1",
    "-1.5",
    "0x10",
    "1e3",
    "true",
    "false",
    "null",
    "==",
    "!=",
    "<",
    "<=",
    ">",
    ">=",
    "&&",
    "||",
    "!",
    "(",
    ")",
    "[",
    "]",
    ".",
    "*",
    ",",
    "contains(",
    "startsWith(",
    "endsWith(",
    "format('{0}{1}', ",
    "join(",
    "toJSON(",
    "fromJSON('",
    "fromJSON('[1,{\"a\":2}]')",
    "hashFiles('**/x')",
    "success()",
    "always()",
    "failure()",
    "cancelled()",
    " ",
    "${{ ",
    " }}",
];

fn corpus() -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut texts = Vec::new();
    for dir in ["tests/workflows/corpus", "fuzz/corpus/workflow_yaml"] {
        for entry in std::fs::read_dir(root.join(dir)).expect("corpus dir") {
            let path = entry.expect("entry").path();
            texts.push(std::fs::read_to_string(&path).expect("read corpus file"));
        }
    }
    texts.sort();
    texts
}

#[derive(Debug, Clone)]
enum Mutation {
    Delete {
        at: usize,
        len: usize,
    },
    Insert {
        at: usize,
        bit: &'static str,
    },
    /// Copies a slice of another corpus file in.
    Splice {
        at: usize,
        from: usize,
        start: usize,
        len: usize,
    },
    DuplicateLine {
        line: usize,
    },
    SwapLines {
        a: usize,
        b: usize,
    },
    Reindent {
        line: usize,
        spaces: usize,
    },
    Byte {
        at: usize,
        byte: u8,
    },
}

fn mutation(files: usize) -> impl Strategy<Value = Mutation> {
    let at = any::<usize>();
    prop_oneof![
        (at, 0..40usize).prop_map(|(at, len)| Mutation::Delete { at, len }),
        (at, prop::sample::select(YAML_BITS)).prop_map(|(at, bit)| Mutation::Insert { at, bit }),
        (at, 0..files, any::<usize>(), 0..200usize).prop_map(|(at, from, start, len)| {
            Mutation::Splice {
                at,
                from,
                start,
                len,
            }
        }),
        any::<usize>().prop_map(|line| Mutation::DuplicateLine { line }),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Mutation::SwapLines { a, b }),
        (any::<usize>(), 0..9usize).prop_map(|(line, spaces)| Mutation::Reindent { line, spaces }),
        (at, any::<u8>()).prop_map(|(at, byte)| Mutation::Byte { at, byte }),
    ]
}

/// The char boundary at or before `at % (len + 1)`.
fn boundary(text: &str, at: usize) -> usize {
    let mut at = at % (text.len() + 1);
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

fn apply(text: &mut String, m: &Mutation, corpus: &[String]) {
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    match *m {
        Mutation::Delete { at, len } => {
            let start = boundary(text, at);
            let end = boundary(text, start + len.min(text.len() - start));
            text.replace_range(start..end.max(start), "");
            return;
        }
        Mutation::Insert { at, bit } => {
            let at = boundary(text, at);
            text.insert_str(at, bit);
            return;
        }
        Mutation::Splice {
            at,
            from,
            start,
            len,
        } => {
            let source = &corpus[from % corpus.len()];
            let start = boundary(source, start);
            let end = boundary(source, start + len.min(source.len() - start)).max(start);
            let at = boundary(text, at);
            text.insert_str(at, &source[start..end]);
            return;
        }
        Mutation::Byte { at, byte } => {
            let at = boundary(text, at);
            text.insert(at, char::from(byte));
            return;
        }
        _ if lines.is_empty() => return,
        Mutation::DuplicateLine { line } => {
            let line = line % lines.len();
            lines.insert(line, lines[line].clone());
        }
        Mutation::SwapLines { a, b } => {
            let n = lines.len();
            lines.swap(a % n, b % n);
        }
        Mutation::Reindent { line, spaces } => {
            let line = line % lines.len();
            let body = lines[line].trim_start().to_owned();
            lines[line] = format!("{}{body}", " ".repeat(spaces));
        }
    }
    *text = lines.join("\n");
}

fn events() -> Vec<Event> {
    let sha = "0123456789abcdef0123456789abcdef01234567".to_owned();
    vec![
        Event::Push {
            git_ref: "refs/heads/main".into(),
            before: "0".repeat(40),
            after: sha.clone(),
            changed_paths: Some(vec!["src/a.rs".into(), "docs/x.md".into()]),
        },
        Event::PullRequest {
            action: "opened".into(),
            number: 7,
            base_ref: "main".into(),
            head_ref: "feature/x".into(),
            head_sha: sha.clone(),
            changed_paths: None,
        },
        Event::WorkflowDispatch {
            git_ref: "refs/heads/main".into(),
            sha,
            inputs: [("n".to_owned(), "3".to_owned())].into(),
        },
    ]
}

/// Runs `test` on cases from `strategy`: the default case count, or for
/// `HANGAR_FUZZ_SECS` seconds. Returns how many cases ran.
fn fuzz<S: Strategy>(name: &str, strategy: S, test: impl Fn(S::Value) + Clone) -> u64
where
    S::Value: std::fmt::Debug,
{
    let budget = std::env::var("HANGAR_FUZZ_SECS")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .map(Duration::from_secs);
    let started = Instant::now();
    let mut cases = 0u64;
    loop {
        let config = Config {
            cases: if budget.is_some() { 5_000 } else { 300 },
            failure_persistence: None,
            ..Config::default()
        };
        let mut runner = TestRunner::new_with_rng(
            config.clone(),
            proptest::test_runner::TestRng::from_seed(
                proptest::test_runner::RngAlgorithm::ChaCha,
                &seed(cases),
            ),
        );
        let test = test.clone();
        let result = runner.run(&strategy, move |value| {
            test(value);
            Ok(())
        });
        if let Err(e) = result {
            panic!("{name}: {e}");
        }
        cases += u64::from(config.cases);
        match budget {
            Some(budget) if started.elapsed() < budget => continue,
            _ => break,
        }
    }
    eprintln!(
        "{name}: {cases} cases in {:.0?}, no panic",
        started.elapsed()
    );
    cases
}

/// A different seed per batch (and per run: the clock), so long runs explore.
fn seed(batch: u64) -> [u8; 32] {
    let clock = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let mut seed = [0u8; 32];
    seed[..8].copy_from_slice(&batch.to_le_bytes());
    seed[8..16].copy_from_slice(&clock.to_le_bytes());
    seed
}

#[test]
fn fuzz_mutated_workflows_never_panic() {
    let corpus = corpus();
    assert!(corpus.len() >= 40, "corpus has {} files", corpus.len());
    let files = corpus.len();
    let strategy = (0..files, prop::collection::vec(mutation(files), 1..12));
    let events = events();
    let context = PlanContext {
        repository: "hangar/app".into(),
        ..PlanContext::default()
    };
    fuzz("workflows", strategy, |(file, mutations)| {
        let mut text = corpus[file].clone();
        for m in &mutations {
            apply(&mut text, m, &corpus);
        }
        if let Ok(wf) = workflow::parse(".github/workflows/fuzz.yml", &text) {
            for event in &events {
                let _ = workflow::plan(&wf, event, &context);
            }
        }
    });
}

#[test]
fn fuzz_expressions_never_panic() {
    let ctx = Context::default()
        .with(
            "matrix",
            Value::Array(vec![Value::from("a"), Value::Number(1.0)]),
        )
        .with(
            "github",
            Value::from(&serde_json::json!({"ref": "refs/heads/main"})),
        );
    let strategy = prop::collection::vec(prop::sample::select(EXPR_BITS), 0..24);
    fuzz("expressions", strategy, |bits| {
        let text = bits.concat();
        let _ = expr::evaluate(&text, &ctx);
        let _ = expr::evaluate_condition(&text, &ctx);
        let _ = expr::render(&text, &ctx);
    });
}
