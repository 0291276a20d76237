//! Any text as an expression and as a template: no panic, whatever it says.
#![no_main]

use hangar_core::workflow::expr::{self, Context, Value};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let ctx = Context::default().with("matrix", Value::Array(vec![Value::from("a"), Value::Number(1.0)]));
    let _ = expr::evaluate(text, &ctx);
    let _ = expr::evaluate_condition(text, &ctx);
    let _ = expr::render(text, &ctx);
});
