//! Expression semantics checked against GitHub's documentation.

use super::*;
use proptest::prelude::*;
use std::collections::BTreeMap;

fn ctx() -> Context<'static> {
    let event: serde_json::Value = serde_json::json!({
        "ref": "refs/heads/main",
        "issues": [
            {"labels": [{"name": "bug"}, {"name": "ci"}]},
            {"labels": [{"name": "docs"}]}
        ],
        "pull_request": {"head": {"ref": "feature/x"}}
    });
    Context::default()
        .with(
            "github",
            Value::Object(BTreeMap::from([
                ("ref".into(), "refs/heads/main".into()),
                ("event_name".into(), "push".into()),
                ("event".into(), Value::from(&event)),
            ])),
        )
        .with(
            "matrix",
            Value::Object(BTreeMap::from([
                ("os".into(), "macos-latest".into()),
                ("node".into(), Value::Number(20.0)),
            ])),
        )
}

fn eval(text: &str) -> Value {
    evaluate(text, &ctx()).unwrap_or_else(|e| panic!("{text}: {e}"))
}

fn truthy(text: &str) -> bool {
    eval(text).is_truthy()
}

#[test]
fn literals() {
    assert_eq!(eval("null"), Value::Null);
    assert_eq!(eval("true"), Value::Bool(true));
    assert_eq!(eval("711"), Value::Number(711.0));
    assert_eq!(eval("-9.2"), Value::Number(-9.2));
    assert_eq!(eval("0xff"), Value::Number(255.0));
    assert_eq!(eval("-2.99e-2"), Value::Number(-0.0299));
    assert_eq!(
        eval("'It''s open source!'"),
        Value::String("It's open source!".into())
    );
}

#[test]
fn coercion_table() {
    // Documented: null→0, true→1, ''→0, 'abc'→NaN, arrays/objects→NaN.
    assert!(truthy("null == 0"));
    assert!(truthy("true == 1"));
    assert!(truthy("'' == 0"));
    assert!(truthy("'' == null"));
    assert!(truthy("' 12 ' == 12"));
    assert!(!truthy("'abc' == 0"));
    assert!(truthy("'0x10' == 16"));
    assert!(!truthy("fromJSON('[]') == 0"));
    assert!(truthy("'ABC' == 'abc'"), "strings compare ignoring case");
    assert!(truthy("'a' < 'B'"));
    assert!(truthy("1 < '2'"));
    assert!(
        !truthy("'abc' < 1") && !truthy("'abc' >= 1"),
        "NaN compares false"
    );
    assert!(
        !truthy("fromJSON('{}') == fromJSON('{}')"),
        "objects equal only by instance"
    );
}

#[test]
fn logic_returns_operands() {
    assert_eq!(eval("'' || 'fallback'"), Value::String("fallback".into()));
    assert_eq!(eval("matrix.node && 'yes'"), Value::String("yes".into()));
    assert_eq!(
        eval("0 && hashFiles('x')"),
        Value::Number(0.0),
        "short-circuits"
    );
    assert!(truthy("!null"));
    assert!(!truthy("!fromJSON('[]')"));
}

#[test]
fn contexts_and_filters() {
    assert_eq!(eval("github.REF"), Value::String("refs/heads/main".into()));
    assert_eq!(eval("github['event_name']"), Value::String("push".into()));
    assert_eq!(
        eval("github.event.issues[1].labels[0].name"),
        Value::String("docs".into())
    );
    assert_eq!(eval("github.nope.deeper"), Value::Null);
    assert_eq!(
        eval("github.event.issues.*.labels.*.name").to_json(),
        serde_json::json!(["bug", "ci", "docs"])
    );
    assert!(truthy(
        "contains(github.event.issues.*.labels.*.name, 'CI')"
    ));
    assert_eq!(
        eval("join(github.event.issues.*.labels.*.name, ', ')"),
        Value::String("bug, ci, docs".into())
    );
}

#[test]
fn functions() {
    assert!(truthy("contains('Hello world', 'WORLD')"));
    assert!(truthy(
        "contains(fromJSON('[\"push\", \"pull_request\"]'), github.event_name)"
    ));
    assert!(!truthy("contains(fromJSON('[1, 2]'), 3)"));
    assert!(truthy("startsWith(github.ref, 'refs/HEADS/')"));
    assert!(truthy("endsWith(matrix.os, '-LATEST')"));
    assert_eq!(
        eval("format('{0}-{1} {{x}}', 'a', 2)"),
        Value::String("a-2 {x}".into())
    );
    assert!(evaluate("format('{0', 1)", &ctx()).is_err());
    assert!(evaluate("format('{1}', 1)", &ctx()).is_err());
    assert!(evaluate("format('a}', 1)", &ctx()).is_err());
    assert_eq!(eval("join('abc')"), Value::String("abc".into()));
    assert_eq!(
        eval("toJSON(matrix)"),
        Value::String("{\n  \"node\": 20,\n  \"os\": \"macos-latest\"\n}".into())
    );
    assert_eq!(
        eval("fromJSON('{\"a\": [1, true, null]}').a[1]"),
        Value::Bool(true)
    );
    assert!(evaluate("fromJSON('{')", &ctx()).is_err());
    assert!(evaluate("hashFiles('**/Podfile.lock')", &ctx()).is_err());
    assert!(evaluate("nosuch(1)", &ctx()).is_err());
}

struct Fixed;
impl FileHasher for Fixed {
    fn hash_files(&self, patterns: &[String]) -> Result<String, String> {
        Ok(format!("hash-of-{}", patterns.join("+")))
    }
}

#[test]
fn hash_files_uses_the_runner() {
    let ctx = Context {
        hasher: Some(&Fixed),
        ..Context::default()
    };
    assert_eq!(
        evaluate("hashFiles('a', 'b')", &ctx).expect("hash"),
        Value::String("hash-of-a+b".into())
    );
}

#[test]
fn conditions_imply_success() {
    let mut failed = ctx();
    failed.status = Status::Failure;
    assert!(evaluate_condition("github.event_name == 'push'", &ctx()).expect("if"));
    assert!(!evaluate_condition("github.event_name == 'push'", &failed).expect("if"));
    assert!(evaluate_condition("${{ failure() }}", &failed).expect("if"));
    assert!(evaluate_condition("always() && matrix.node == 20", &failed).expect("if"));
    assert!(!evaluate_condition("cancelled()", &failed).expect("if"));
}

#[test]
fn templates() {
    assert_eq!(
        render("node-${{ matrix.node }} on ${{ matrix.os }}", &ctx()).expect("render"),
        Value::String("node-20 on macos-latest".into())
    );
    assert_eq!(
        render("${{ matrix.node }}", &ctx()).expect("typed"),
        Value::Number(20.0)
    );
    assert_eq!(
        render("${{ '}}' }}", &ctx()).expect("braces in strings"),
        Value::String("}}".into())
    );
    assert_eq!(
        render("no expressions", &ctx()).expect("plain"),
        Value::String("no expressions".into())
    );
    let e = parse_template("ab ${{ matrix.os ").expect_err("unclosed");
    assert_eq!(e.offset, 3);
    let e = parse_template("é ${{ matrix. }}").expect_err("bad");
    assert_eq!(e.offset, 14, "{e}");
}

#[test]
fn numbers_print_like_github() {
    assert_eq!(Value::Number(3.0).to_string(), "3");
    assert_eq!(Value::Number(3.1).to_string(), "3.1");
    assert_eq!(Value::Number(f64::NAN).to_string(), "NaN");
    assert_eq!(to_number("1e3"), 1000.0);
    assert!(to_number("inf").is_nan());
    assert!(to_number("1_000").is_nan());
}

fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i32>().prop_map(serde_json::Value::from),
        "[a-z '\"{}]{0,8}".prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(4, 32, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
            prop::collection::btree_map("[a-z]{1,4}", inner, 0..4)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #[test]
    fn from_json_round_trips(json in json_value()) {
        let value = Value::from(&json);
        let ctx = Context::default().with("env", Value::Object(BTreeMap::from([
            ("J".to_string(), Value::String(json.to_string())),
        ])));
        let back = evaluate("fromJSON(toJSON(fromJSON(env.J)))", &ctx).expect("round trip");
        prop_assert_eq!(back, value);
    }

    #[test]
    fn never_panics(text in "[a-z.*()\\[\\]!=<>&|,' 0-9-]{0,80}") {
        if let Ok(ast) = parse(&text) {
            let _ = eval::eval(&ast, &ctx());
        }
        let _ = render(&format!("x ${{{{ {text} }}}} y"), &ctx());
    }

    #[test]
    fn equality_is_symmetric(a in json_value(), b in json_value()) {
        let (a, b) = (Value::from(&a), Value::from(&b));
        prop_assert_eq!(eval::loose_eq(&a, &b), eval::loose_eq(&b, &a));
    }
}
