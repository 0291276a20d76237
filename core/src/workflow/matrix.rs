//! `strategy.matrix` expansion: the product of the axes, minus `exclude`,
//! plus `include`, following GitHub's documented rules.

use super::expr::Value;
use std::collections::BTreeMap;

/// Most jobs one matrix may produce (GitHub's limit).
pub const MAX_JOBS: usize = 256;

/// One matrix combination: axis name to value.
pub type Combination = BTreeMap<String, Value>;

/// Expands a rendered matrix into its combinations, in order.
pub fn expand(matrix: &Value) -> Result<Vec<Combination>, String> {
    let Value::Object(map) = matrix else {
        return Err("strategy.matrix must be a mapping of names to lists".to_owned());
    };
    let mut include = Vec::new();
    let mut exclude = Vec::new();
    let mut axes = Vec::new();
    for (key, value) in map {
        match (key.as_str(), value) {
            ("include", v) => include = entries(v, "include")?,
            ("exclude", v) => exclude = entries(v, "exclude")?,
            (_, Value::Array(items)) => axes.push((key, items)),
            (_, other) => {
                return Err(format!(
                    "matrix `{key}` must be a list, not {}",
                    kind(other)
                ));
            }
        }
    }
    // Excludes may shrink a large product, so allow some headroom before them.
    let size = axes
        .iter()
        .try_fold(1usize, |n, (_, items)| n.checked_mul(items.len()));
    if size.is_none_or(|n| n > MAX_JOBS * 16) {
        return Err(format!(
            "matrix has more than {} combinations; the limit is {MAX_JOBS} jobs",
            MAX_JOBS * 16
        ));
    }
    let mut combos: Vec<Combination> = if axes.is_empty() {
        Vec::new()
    } else {
        vec![Combination::new()]
    };
    for (key, items) in &axes {
        combos = combos
            .iter()
            .flat_map(|c| {
                items.iter().map(move |v| {
                    let mut c = c.clone();
                    c.insert((*key).clone(), v.clone());
                    c
                })
            })
            .collect();
    }
    combos.retain(|c| {
        !exclude
            .iter()
            .any(|ex| ex.iter().all(|(k, v)| c.get(k) == Some(v)))
    });
    let original = combos.len();
    for extra in include {
        let mut matched = false;
        for combo in &mut combos[..original] {
            // An include may add keys to a combination, never change its axis values.
            let fits = extra
                .iter()
                .all(|(k, v)| !axes.iter().any(|(a, _)| *a == k) || combo.get(k) == Some(v));
            if fits {
                combo.extend(extra.iter().map(|(k, v)| (k.clone(), v.clone())));
                matched = true;
            }
        }
        if !matched {
            combos.push(extra);
        }
    }
    if combos.is_empty() {
        return Err("the matrix produces no jobs; check its lists and `exclude`".to_owned());
    }
    if combos.len() > MAX_JOBS {
        return Err(format!(
            "the matrix produces {} jobs; the limit is {MAX_JOBS}",
            combos.len()
        ));
    }
    Ok(combos)
}

fn entries(value: &Value, what: &str) -> Result<Vec<Combination>, String> {
    let Value::Array(items) = value else {
        return Err(format!("matrix `{what}` must be a list of mappings"));
    };
    items
        .iter()
        .map(|item| match item {
            Value::Object(map) => Ok(map.clone()),
            other => Err(format!(
                "matrix `{what}` entries must be mappings, not {}",
                kind(other)
            )),
        })
        .collect()
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn json(text: &str) -> Value {
        Value::from(&serde_json::from_str::<serde_json::Value>(text).expect("test JSON"))
    }

    fn expand_json(text: &str) -> Vec<serde_json::Value> {
        expand(&json(text))
            .expect("valid matrix")
            .iter()
            .map(|c| Value::Object(c.clone()).to_json())
            .collect()
    }

    #[test]
    fn githubs_include_example() {
        // The example from GitHub's docs: "Expanding or adding matrix configurations".
        let got = expand_json(
            r#"{"fruit": ["apple", "pear"], "animal": ["cat", "dog"],
                "include": [{"color": "green"}, {"color": "pink", "animal": "cat"},
                            {"fruit": "apple", "shape": "circle"}, {"fruit": "banana"},
                            {"fruit": "banana", "animal": "cat"}]}"#,
        );
        let want: Vec<serde_json::Value> = serde_json::from_str(
            r#"[{"animal": "cat", "color": "pink", "fruit": "apple", "shape": "circle"},
                {"animal": "cat", "color": "pink", "fruit": "pear"},
                {"animal": "dog", "color": "green", "fruit": "apple", "shape": "circle"},
                {"animal": "dog", "color": "green", "fruit": "pear"},
                {"fruit": "banana"},
                {"animal": "cat", "fruit": "banana"}]"#,
        )
        .expect("want");
        assert_eq!(got, want);
    }

    #[test]
    fn exclude_and_include_only() {
        let got = expand_json(
            r#"{"os": ["macos", "linux"], "v": [1, 2], "exclude": [{"os": "linux", "v": 1}]}"#,
        );
        assert_eq!(got.len(), 3);
        let got = expand_json(r#"{"include": [{"a": 1}, {"a": 2}]}"#);
        assert_eq!(
            got,
            vec![serde_json::json!({"a": 1}), serde_json::json!({"a": 2})]
        );
    }

    #[test]
    fn limits() {
        let big = r#"{"a": [1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17], "b": [1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16]}"#;
        assert!(
            expand(&json(big))
                .expect_err("too many")
                .contains("limit is 256")
        );
        let huge = format!(
            "{{{}}}",
            (0..40)
                .map(|i| format!("\"k{i}\": [1, 2]"))
                .collect::<Vec<_>>()
                .join(",")
        );
        assert!(expand(&json(&huge)).is_err(), "2^40 must not be built");
        assert!(expand(&json(r#"{"a": []}"#)).is_err());
        assert!(expand(&json(r#"{"a": 1}"#)).is_err());
    }

    proptest! {
        #[test]
        fn size_is_product_when_plain(a in 1usize..8, b in 1usize..8) {
            let m = json(&format!("{{\"a\": {:?}, \"b\": {:?}}}", (0..a).collect::<Vec<_>>(), (0..b).collect::<Vec<_>>()));
            prop_assert_eq!(expand(&m).expect("valid").len(), a * b);
        }
    }
}
