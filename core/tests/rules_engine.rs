//! The CEL rule engine: exact decimals, determinism, and hostile rules
//! refused or bounded with a typed error (never a hang, a crash or unbounded memory).

use careledger::rules::document::RuleSet;
use careledger::rules::engine::{
    compile, CompileExpressionError, EvaluateError, Evaluated, Inputs, Limits,
};
use careledger::rules::outcome::{apply, ApplyRuleError, RuleInputs};
use serde_json::json;

const VARS: &[&str] = &["resource", "chart", "patient", "trigger", "prediction"];

fn eval(source: &str) -> Result<Evaluated, String> {
    let limits = Limits::default();
    let expr = compile(source, VARS, &limits).map_err(|e| format!("compile: {e}"))?;
    let claim = json!({"resourceType": "Claim", "id": "c1",
        "total": {"value": 269.68, "currency": "USD"},
        "item": [{"sequence": 1, "net": {"value": 140, "currency": "USD"}}],
        "codes": {"b": 1, "a": 2, "c": 3}});
    let mut inputs = Inputs::new();
    inputs.add_json("resource", &claim).unwrap();
    expr.evaluate(&inputs, &limits)
        .map_err(|e| format!("evaluate: {e}"))
}

#[test]
fn money_is_exact_decimal() {
    assert_eq!(
        eval("(resource.total.value * decimal('0.80')).round(2)")
            .unwrap()
            .to_string(),
        "decimal(215.74)"
    );
    assert_eq!(
        eval("decimal('0.1') + decimal('0.2') == decimal('0.3')").unwrap(),
        Evaluated::Bool(true)
    );
    assert_eq!(
        eval("decimal('1.50') == decimal('1.5')").unwrap(),
        Evaluated::Bool(true)
    );
    assert_eq!(
        eval("decimal('2.345').round(2)").unwrap().to_string(),
        "decimal(2.35)"
    );
    assert_eq!(
        eval("decimal('-2.345').round(2)").unwrap().to_string(),
        "decimal(-2.35)"
    );
    // A Money value written as an integer is still a decimal.
    assert_eq!(
        eval("type(resource.item[0].net.value) == decimal").unwrap(),
        Evaluated::Bool(true)
    );
    assert_eq!(
        eval("type(resource.item[0].sequence) == int").unwrap(),
        Evaluated::Bool(true)
    );
    assert_eq!(
        eval("string(decimal('10.10'))").unwrap(),
        Evaluated::String("10.10".into())
    );
    // No implicit conversion: a double never becomes money.
    assert!(eval("decimal(0.8)").unwrap_err().contains("evaluate"));
    assert!(eval("resource.total.value * 0.8").is_err());
    assert!(eval("resource.total.value > 100").is_err());
    assert_eq!(eval("1 == decimal('1')").unwrap(), Evaluated::Bool(false));
    assert_eq!(eval("decimal('1') == 1").unwrap(), Evaluated::Bool(false));
    assert!(eval("decimal('1') / decimal('0')").is_err());
    assert!(eval("decimal('79228162514264337593543950335') + decimal('1')").is_err());
}

#[test]
fn map_iteration_is_sorted_so_every_member_agrees() {
    for _ in 0..20 {
        assert_eq!(
            eval("resource.codes.map(k, k)").unwrap().to_string(),
            r#"["a", "b", "c"]"#
        );
    }
}

fn refused(source: &str) -> CompileExpressionError {
    compile(source, VARS, &Limits::default()).expect_err(source)
}

#[test]
fn hostile_sources_are_refused_before_they_run() {
    let deep = format!("{}1{}", "(".repeat(5_000), ")".repeat(5_000));
    assert!(matches!(
        refused(&deep),
        CompileExpressionError::SourceTooLong { .. }
    ));
    for deep in [
        format!("{}1{}", "(".repeat(200), ")".repeat(200)),
        format!("{}1{}", "[".repeat(200), "]".repeat(200)),
        format!("{}true", "!".repeat(2_000)),
        format!("{}1", "-".repeat(2_000)),
        format!("1{}", " + 1".repeat(1_500)),
        format!("a.b{}", ".c".repeat(2_000)),
    ] {
        // Refused, or (`!!…!x`, `--…-1`) folded by the parser into a few
        // nodes that evaluate at once.
        if let Ok(expr) = compile(&deep, VARS, &Limits::default()) {
            assert!(expr.nodes() <= 3, "{} nodes", expr.nodes());
            let _ = expr.evaluate(&Inputs::new(), &Limits::default());
        }
    }
    let list = format!("[{}]", vec!["1"; 1_500].join(","));
    assert!(matches!(
        refused(&list),
        CompileExpressionError::TooManyNodes { .. }
    ));
    assert!(matches!(
        refused("[1].all(a, [1].all(b, [1].all(c, [1].all(d, true))))"),
        CompileExpressionError::NestingTooDeep { .. }
    ));
    assert_eq!(
        refused("secret + 1"),
        CompileExpressionError::UnknownVariable("secret".into())
    );
    assert!(matches!(
        refused("resource.x.exists(y, z)"),
        CompileExpressionError::UnknownVariable(_)
    ));
    assert!(matches!(
        refused("optional.of(1)"),
        CompileExpressionError::FunctionNotAllowed(_)
    ));
    assert!(matches!(
        refused("resource.?total"),
        CompileExpressionError::Parse(_) | CompileExpressionError::Optional
    ));
    assert_eq!(
        refused("resource.id.matches(resource.id)"),
        CompileExpressionError::PatternNotLiteral
    );
    assert!(matches!(
        refused("resource.id +"),
        CompileExpressionError::Parse(_)
    ));
    assert!(matches!(
        refused("Foo{a: 1}"),
        CompileExpressionError::Parse(_)
    ));
    assert!(compile("resource.id.matches('^c[0-9]+$')", VARS, &Limits::default()).is_ok());
}

#[test]
fn hostile_evaluations_are_bounded() {
    let hundred = format!(
        "[{}]",
        (0..100)
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join(",")
    );
    // 100 × 100 × 100 iterations with a body: more than the budget.
    let cube =
        format!("{hundred}.exists(x, {hundred}.exists(y, {hundred}.exists(z, z == x + y + 1000)))");
    assert!(matches!(
        compile(&cube, VARS, &Limits::default())
            .unwrap()
            .evaluate(&Inputs::new(), &Limits::default()),
        Err(EvaluateError::BudgetExhausted { .. })
    ));
    // Strings doubled through comprehensions: refused at the size limit.
    let mut doubling = "'aaaaaaaaaaaaaaaa'".to_string();
    for _ in 0..3 {
        doubling = format!("[{doubling}].map(x, x + x + x + x + x + x + x + x)[0]");
    }
    let limits = Limits {
        max_value_len: 4_096,
        ..Limits::default()
    };
    let expr = compile(&doubling, VARS, &limits).unwrap();
    assert!(matches!(
        expr.evaluate(&Inputs::new(), &limits),
        Err(EvaluateError::ValueTooLarge { .. })
    ));
    // Lists grown by `+` inside comprehensions are bounded the same way.
    let lists = format!("{hundred}.map(x, {hundred} + {hundred} + {hundred})");
    let limits = Limits {
        budget: 10_000,
        ..Limits::default()
    };
    assert!(compile(&lists, VARS, &limits)
        .unwrap()
        .evaluate(&Inputs::new(), &limits)
        .is_err());
    // Wrong types are typed errors that quote no value.
    for (source, want) in [
        ("1 + 'secret-value'", "does not apply"),
        ("resource.nope", "no such key"),
        ("'x' < 1", "overload"),
        ("1 / 0", "division by zero"),
    ] {
        let err = eval(source).unwrap_err();
        assert!(err.contains(want), "{source}: {err}");
        assert!(!err.contains("secret-value"));
    }
}

#[test]
fn inputs_are_bounded() {
    let mut deep = json!(1);
    for _ in 0..200 {
        deep = json!([deep]);
    }
    let mut inputs = Inputs::new();
    assert!(matches!(
        inputs.add_json("resource", &deep),
        Err(EvaluateError::InputTooLarge { .. })
    ));
    let wide = json!((0..100).collect::<Vec<_>>());
    let mut inputs = Inputs::with_limit(50);
    assert!(inputs.add_json("resource", &wide).is_err());
    let huge = json!({"value": 1e300, "currency": "USD"});
    let mut inputs = Inputs::new();
    assert!(matches!(
        inputs.add_json("resource", &huge),
        Err(EvaluateError::NumberOutOfRange)
    ));
}

#[test]
fn rule_documents_are_checked_whole() {
    let limits = Limits::default();
    let good = std::fs::read("../examples/data/rules/claims-adjudication.json")
        .unwrap()
        .into_iter()
        .collect::<Vec<u8>>();
    let good = String::from_utf8(good)
        .unwrap()
        .replace("INSURER", &"ab".repeat(32));
    let set = RuleSet::parse(good.as_bytes(), &limits).unwrap();
    assert_eq!(set.rules.len(), 1);
    for (from, to, want) in [
        ("\"version\": 1", "\"version\": 0", "version"),
        (
            "\"outcome\": \"approve\",\n        \"amount\"",
            "\"outcome\": \"approve\",\n        \"x\"",
            "JSON",
        ),
        (
            "resource.total.value > decimal('750')",
            "resource.total.value > nope",
            "unknown variable",
        ),
        (
            "\"currency\": \"USD\"",
            "\"currency\": \"dollars\"",
            "currency",
        ),
        (
            "\"resource_type\": \"Claim\"",
            "\"resource_type\": \"claim\"",
            "resource type",
        ),
    ] {
        assert!(good.contains(from), "{from}");
        let bad = good.replacen(from, to, 1);
        let err = RuleSet::parse(bad.as_bytes(), &limits)
            .unwrap_err()
            .to_string();
        assert!(err.contains(want), "{want}: {err}");
    }
    // One changed byte is another rule set.
    let other = good.replacen("0.80", "0.90", 1);
    assert_ne!(
        RuleSet::parse(other.as_bytes(), &limits).unwrap().hash,
        set.hash
    );
    // A double amount is refused when the rule runs; nothing is decided.
    let double = good.replacen(
        "(resource.total.value * decimal('0.80')).round(2)",
        "0.8",
        1,
    );
    let set = RuleSet::parse(double.as_bytes(), &limits).unwrap();
    let inputs = RuleInputs {
        resource: json!({"resourceType": "Claim", "id": "c", "status": "active", "use": "claim",
            "insurance": [{"focal": true, "coverage": {"display": "Aetna"}}],
            "total": {"value": 10, "currency": "USD"}}),
        chart: serde_json::from_value(json!({"Coverage": [], "Condition": [], "Patient": []}))
            .unwrap(),
        patient: json!(null),
        trigger: json!({"entry": "00", "time_ms": 0, "time": "1970-01-01T00:00:00Z"}),
        prediction: None,
    };
    assert!(matches!(
        apply(&set.rules[0], &inputs, &limits),
        Err(ApplyRuleError::WrongType { .. })
    ));
}

#[test]
fn operator_chains_are_refused_before_the_parser_sees_them() {
    for chain in [
        format!("1{}", " + 1".repeat(3_000)),
        format!("true{}", "&&true".repeat(2_000)),
        format!("r'\\\\'{}", "+1".repeat(3_000)),
        format!("'''x'''{}", "+1".repeat(3_000)),
    ] {
        let limits = Limits {
            max_source_len: 100_000,
            ..Limits::default()
        };
        assert!(matches!(
            compile(&chain, VARS, &limits),
            Err(CompileExpressionError::TooManyNodes { .. })
        ));
    }
    // Under the operator limit, a long chain still parses within the stack
    // and is held to the tree depth.
    let chain = format!("1{}", " + 1".repeat(400));
    assert!(matches!(
        compile(&chain, VARS, &Limits::default()),
        Err(CompileExpressionError::TooDeep { .. })
    ));
}
