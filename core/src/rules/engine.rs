//! Bounded, deterministic evaluation of CEL expressions.
//!
//! Expressions are parsed and evaluated by the [`cel`] crate. This module
//! adds what a rule engine that runs on every member of a healthcare network
//! needs on top of it, and nothing else: it does not interpret CEL itself.
//!
//! 1. **Refused before anything runs** ([`compile`]): source longer than
//!    [`Limits::max_source_len`], a parse deeper than
//!    [`Limits::max_depth`] (the parser's own recursion limit, so a hostile
//!    nesting never reaches the stack), more than [`Limits::max_nodes`] AST
//!    nodes, comprehensions (`all`, `exists`, `exists_one`, `map`,
//!    `filter`) nested deeper than [`Limits::max_comprehension_nesting`],
//!    a variable the rule does not declare, a function outside the allowed
//!    list (the standard ones a rule needs, plus `decimal`), a regular
//!    expression that is not a short string literal, and optional syntax.
//! 2. **Metered** while it runs: the compiled tree is the parsed one with two
//!    kinds of calls inserted, which source text cannot spell (their names
//!    start with `@`):
//!    - every comprehension's range goes through `@range`, which charges
//!      `size(range) × (nodes of the loop body + 1)` to the evaluation's
//!      budget *before* the loop starts, and refuses the evaluation when
//!      the budget would go below zero. Each node of the tree is evaluated
//!      at most once per iteration of its enclosing loops, so the number of
//!      node evaluations is at most `nodes + budget`: evaluation always
//!      terminates, in time linear in [`Limits::budget`]. A map range is
//!      handed to the loop as its sorted keys, so iteration order (and so
//!      `map()` results) is the same on every member;
//!    - every `+` that may build a string, bytes or list goes through
//!      `@size`, which refuses results longer than
//!      [`Limits::max_value_len`] and charges their length to the budget.
//!      The other operators and functions produce values no larger than
//!      their operands, so memory stays bounded by the inputs plus
//!      `max_value_len` per live value.
//! 3. **Deterministic**: there is no clock, no randomness, no I/O; time is
//!    an input. Doubles exist (CEL literals) but money is a
//!    [`decimal`](super::decimal).
//!
//! Errors never quote a value: they name the rule's limit, the function or
//! the type ([`EvaluateError`]).
//!
//! ```
//! use careledger::rules::engine::{compile, Inputs, Limits};
//! use serde_json::json;
//! let limits = Limits::default();
//! let expr = compile("resource.total.value * decimal('0.80')", &["resource"], &limits).unwrap();
//! let claim = json!({"resourceType": "Claim", "total": {"value": 269.68, "currency": "USD"}});
//! let mut inputs = Inputs::new();
//! inputs.add_json("resource", &claim).unwrap();
//! let value = expr.evaluate(&inputs, &limits).unwrap();
//! assert_eq!(value.to_string(), "decimal(215.7440)");
//! ```

use std::cmp::Ordering;
use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};
use std::sync::{Arc, OnceLock};

use cel::common::ast::{operators, CallExpr, EntryExpr, Expr, IdedExpr, LiteralValue};
use cel::common::types::{
    CelBool, CelBytes, CelDouble, CelInt, CelList, CelMap, CelMapKey, CelNull, CelString, CelUInt,
    Type,
};
use cel::common::value::{CowVal, StaticVal, Val};
use cel::{Context, Env, ExecutionError, FunctionContext};
use serde_json::Value as Json;

use super::decimal::{self, parse_decimal, CelDecimal};

/// The bounds every rule expression is held to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Longest source text, in bytes.
    pub max_source_len: usize,
    /// Most AST nodes after macro expansion.
    pub max_nodes: usize,
    /// Most operator and separator characters (`+ - * / % ! < > = & | ? : . [ ( ,`,
    /// string literals included) in the source, checked before parsing: a
    /// chain of binary operators nests the parser's own tree as deep as it
    /// is long, which the parser's recursion limit does not count.
    pub max_operators: usize,
    /// Deepest expression tree after parsing.
    pub max_tree_depth: usize,
    /// Deepest nesting the parser accepts (and so the deepest tree).
    pub max_depth: u16,
    /// Most comprehensions nested inside each other.
    pub max_comprehension_nesting: usize,
    /// Units of work one evaluation may spend: loop iterations weighted by
    /// the size of their body, plus the length of built strings and lists.
    pub budget: u64,
    /// Longest string, bytes or list an evaluation may build.
    pub max_value_len: usize,
    /// Most JSON values (objects, arrays, scalars) in one evaluation's inputs.
    pub max_input_values: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_source_len: 8 * 1024,
            max_nodes: 1_000,
            max_operators: 500,
            max_tree_depth: 128,
            max_depth: 32,
            max_comprehension_nesting: 3,
            budget: 1_000_000,
            max_value_len: 1 << 20,
            max_input_values: 1_000_000,
        }
    }
}

/// A CEL expression was refused before it ran.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CompileExpressionError {
    /// The source is longer than the limit.
    #[error("expression is {len} bytes long, more than the {max} allowed")]
    SourceTooLong {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The source does not parse (or nests deeper than the parser allows).
    #[error("expression does not parse: {0}")]
    Parse(String),
    /// Too many nodes.
    #[error("expression has {nodes} nodes, more than the {max} allowed")]
    TooManyNodes {
        /// Nodes found (counting stops past the limit).
        nodes: usize,
        /// The limit.
        max: usize,
    },
    /// The expression tree is deeper than the limit.
    #[error("expression nests {depth} deep, more than the {max} allowed")]
    TooDeep {
        /// Depth found (checking stops past the limit).
        depth: usize,
        /// The limit.
        max: usize,
    },
    /// Comprehensions nested too deeply.
    #[error("comprehensions nested {depth} deep, more than the {max} allowed")]
    NestingTooDeep {
        /// Depth found.
        depth: usize,
        /// The limit.
        max: usize,
    },
    /// A variable the rule does not declare.
    #[error("unknown variable `{0}`")]
    UnknownVariable(String),
    /// A function that rules may not call.
    #[error("function `{0}` is not available to rules")]
    FunctionNotAllowed(String),
    /// `matches` with a pattern that is not a string literal of at most 256 bytes.
    #[error("`matches` takes a string literal pattern of at most 256 bytes")]
    PatternNotLiteral,
    /// Optional values (`a.?b`, `optional.of`) are not available to rules.
    #[error("optional syntax is not available to rules")]
    Optional,
}

/// Evaluating an expression failed; nothing is written for it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EvaluateError {
    /// The evaluation spent its whole budget.
    #[error("evaluation exceeded its budget of {budget} work units")]
    BudgetExhausted {
        /// The budget.
        budget: u64,
    },
    /// A string, bytes or list grew past the limit.
    #[error("a built value would be longer than {max}")]
    ValueTooLarge {
        /// The limit.
        max: usize,
    },
    /// The inputs hold more JSON values than the limit, or nest too deeply.
    #[error("the inputs hold more than {max} values or nest too deeply")]
    InputTooLarge {
        /// The limit.
        max: usize,
    },
    /// A JSON number in the inputs is not representable (beyond 28 digits).
    #[error("an input number is out of range for a decimal")]
    NumberOutOfRange,
    /// CEL refused the evaluation (a type error, a missing field, …).
    #[error("evaluation failed: {0}")]
    Failed(String),
}

/// Function and operator names a rule may call (besides the comparison and
/// arithmetic operators, always allowed).
const GLOBAL_FUNCTIONS: &[&str] = &[
    "size", "int", "uint", "double", "string", "bool", "bytes", "type", "dyn", "decimal", "matches",
];
const MEMBER_FUNCTIONS: &[&str] = &[
    "size",
    "contains",
    "startsWith",
    "endsWith",
    "matches",
    "round",
];
const OPERATORS: &[&str] = &[
    operators::CONDITIONAL,
    operators::LOGICAL_AND,
    operators::LOGICAL_OR,
    operators::LOGICAL_NOT,
    operators::SUBSTRACT,
    operators::ADD,
    operators::MULTIPLY,
    operators::DIVIDE,
    operators::MODULO,
    operators::EQUALS,
    operators::NOT_EQUALS,
    operators::GREATER_EQUALS,
    operators::LESS_EQUALS,
    operators::GREATER,
    operators::LESS,
    operators::NEGATE,
    operators::INDEX,
    operators::IN,
    operators::NOT_STRICTLY_FALSE,
];
/// Type names usable as identifiers (`type(x) == int`).
const TYPE_NAMES: &[&str] = &[
    "int",
    "uint",
    "double",
    "bool",
    "string",
    "bytes",
    "list",
    "map",
    "null_type",
    "type",
    "decimal",
];

const RANGE_METER: &str = "@range";
const SIZE_METER: &str = "@size";
const BUDGET_VARIABLE: &str = "@budget";
const MAX_PATTERN_LEN: usize = 256;

/// The shared environment: the CEL standard library without optional
/// values, plus `decimal`. Built once per process.
fn environment() -> &'static Arc<Env> {
    static ENV: OnceLock<Arc<Env>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Env::stdlib().with_optional_support(false);
        // Declaring into a fresh standard environment cannot conflict.
        let _ = decimal::declare(&mut env);
        Arc::new(env)
    })
}

/// A compiled, checked and metered expression.
#[derive(Clone, Debug)]
pub struct Expression {
    source: String,
    metered: IdedExpr,
    plain: IdedExpr,
    nodes: usize,
}

impl Expression {
    /// The source text it was compiled from.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// AST nodes (after macro expansion, before metering).
    pub fn nodes(&self) -> usize {
        self.nodes
    }

    /// The parsed tree without metering: for comparing against bare `cel`
    /// evaluation (benchmarks).
    pub fn unmetered(&self) -> &IdedExpr {
        &self.plain
    }

    /// Evaluate against `inputs` within `limits.budget`.
    pub fn evaluate(
        &self,
        inputs: &Inputs<'_>,
        limits: &Limits,
    ) -> Result<Evaluated, EvaluateError> {
        let root = metered_context(limits);
        self.evaluate_in(&root, inputs, limits)
    }

    /// Evaluate in a context made by [`metered_context`] (one per batch of
    /// evaluations saves setting it up each time).
    pub fn evaluate_in(
        &self,
        root: &Context<'_, '_>,
        inputs: &Inputs<'_>,
        limits: &Limits,
    ) -> Result<Evaluated, EvaluateError> {
        let remaining = limits.budget.saturating_sub(self.nodes as u64);
        let mut scope = root.new_inner_scope();
        for (name, value) in &inputs.values {
            scope.add_variable_as_val(name.clone(), value.clone_as_boxed());
        }
        scope.add_variable_as_val(BUDGET_VARIABLE, Box::new(Budget::new(remaining)));
        let result = cel::Value::resolve_val(&self.metered, &scope);
        match result {
            Ok(value) => Ok(Evaluated::from_val(value.as_ref())),
            Err(error) => Err(classify(&error, limits)),
        }
    }
}

/// The shape of a function added to a `cel` context (`cel::magic::Function`,
/// which the crate does not export by name).
type MeterFn = Box<
    dyn for<'c, 'a> Fn(&mut FunctionContext<'c, 'a>) -> Result<CowVal<'c, 'a>, ExecutionError>
        + Send
        + Sync,
>;

impl Expression {
    /// Bare `cel` evaluation of the parsed tree: no meters, no budget (the
    /// benchmark's peer; never for untrusted rules).
    pub fn evaluate_unmetered(
        &self,
        root: &Context<'_, '_>,
        inputs: &Inputs<'_>,
    ) -> Result<Evaluated, String> {
        let mut scope = root.new_inner_scope();
        for (name, value) in &inputs.values {
            scope.add_variable_as_val(name.clone(), value.clone_as_boxed());
        }
        cel::Value::resolve_val(&self.plain, &scope)
            .map(|value| Evaluated::from_val(value.as_ref()))
            .map_err(|error| describe(&error))
    }
}

/// A root context with the meters registered; evaluations run in child
/// scopes of it.
pub fn metered_context(limits: &Limits) -> Context<'static, 'static> {
    let mut context = Context::with_env(Arc::clone(environment()));
    let max_len = limits.max_value_len;
    let range: MeterFn = Box::new(range_meter);
    let size: MeterFn = Box::new(move |ftx: &mut FunctionContext<'_, '_>| size_meter(ftx, max_len));
    // Names starting with `@` are neither standard overloads nor spellable
    // in source: adding them cannot fail or clash.
    let _ = context.add_function(RANGE_METER, range);
    let _ = context.add_function(SIZE_METER, size);
    context
}

/// A plain context over the same environment, without meters: what bare
/// `cel` evaluation of the unmetered tree uses (benchmarks, tests).
pub fn plain_context() -> Context<'static, 'static> {
    Context::with_env(Arc::clone(environment()))
}

/// The remaining budget of one evaluation.
#[derive(Debug)]
struct Budget(AtomicU64);

impl Budget {
    fn new(units: u64) -> Budget {
        Budget(AtomicU64::new(units))
    }

    fn charge(&self, units: u64) -> Result<(), ExecutionError> {
        let left = self.0.load(AtomicOrdering::Relaxed);
        match left.checked_sub(units) {
            Some(rest) => {
                self.0.store(rest, AtomicOrdering::Relaxed);
                Ok(())
            }
            None => {
                self.0.store(0, AtomicOrdering::Relaxed);
                Err(ExecutionError::function_error(RANGE_METER, BUDGET_MARK))
            }
        }
    }
}

static BUDGET_TYPE: Type = Type::new_unspecified_type("@budget");
const BUDGET_MARK: &str = "budget exhausted";
const SIZE_MARK: &str = "value too large";

impl Val for Budget {
    fn get_type(&self) -> &Type {
        &BUDGET_TYPE
    }

    fn cel_type() -> &'static Type {
        &BUDGET_TYPE
    }

    fn clone_as_boxed<'v>(&self) -> Box<dyn Val + 'v> {
        Box::new(Budget::new(self.0.load(AtomicOrdering::Relaxed)))
    }

    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
}

impl StaticVal for Budget {}

fn charge(ftx: &FunctionContext<'_, '_>, units: u64) -> Result<(), ExecutionError> {
    let budget = ftx
        .ptx
        .get_variable(BUDGET_VARIABLE)
        .ok_or_else(|| ExecutionError::function_error(RANGE_METER, BUDGET_MARK))?;
    let budget = budget
        .downcast_ref::<Budget>()
        .ok_or_else(|| ExecutionError::function_error(RANGE_METER, BUDGET_MARK))?;
    budget.charge(units)
}

/// `@range(range, cost)`: charge `size(range) × cost`, hand lists on as they
/// are and maps as their sorted keys.
fn range_meter<'c, 'v>(
    ftx: &mut FunctionContext<'c, 'v>,
) -> Result<CowVal<'c, 'v>, ExecutionError> {
    let cost = ftx
        .args
        .get(1)
        .and_then(|c| c.downcast_ref::<CelInt>())
        .map(|c| (*c.inner()).max(1) as u64)
        .unwrap_or(1);
    let Some(range) = ftx.args.first() else {
        return Err(ExecutionError::invalid_argument_count(2, 0));
    };
    let len = range
        .as_sizer()
        .map(|s| (*s.size().inner()).max(0) as u64)
        .unwrap_or(0);
    charge(ftx, len.saturating_mul(cost))?;
    let range = ftx.args.swap_remove(0);
    if range.downcast_ref::<CelMap>().is_none() {
        return Ok(range);
    }
    let Some(iterable) = range.as_iterable() else {
        return Ok(range);
    };
    let mut keys: Vec<Box<dyn Val + 'v>> = Vec::with_capacity(len as usize);
    let mut items = iterable.iter();
    while let Some(key) = items.next() {
        keys.push(key.clone_as_boxed());
    }
    keys.sort_by(|a, b| key_order(a.as_ref(), b.as_ref()));
    Ok(CowVal::owned(CelList::from(keys)))
}

/// Map keys in a fixed order: bools, ints, uints, strings, each by value.
fn key_order(a: &dyn Val, b: &dyn Val) -> Ordering {
    fn rank(v: &dyn Val) -> u8 {
        if v.downcast_ref::<CelBool>().is_some() {
            0
        } else if v.downcast_ref::<CelInt>().is_some() {
            1
        } else if v.downcast_ref::<CelUInt>().is_some() {
            2
        } else {
            3
        }
    }
    rank(a).cmp(&rank(b)).then_with(|| {
        if let (Some(x), Some(y)) = (a.downcast_ref::<CelBool>(), b.downcast_ref::<CelBool>()) {
            return x.inner().cmp(y.inner());
        }
        if let (Some(x), Some(y)) = (a.downcast_ref::<CelInt>(), b.downcast_ref::<CelInt>()) {
            return x.inner().cmp(y.inner());
        }
        if let (Some(x), Some(y)) = (a.downcast_ref::<CelUInt>(), b.downcast_ref::<CelUInt>()) {
            return x.inner().cmp(y.inner());
        }
        if let (Some(x), Some(y)) = (a.downcast_ref::<CelString>(), b.downcast_ref::<CelString>()) {
            return x.inner().cmp(y.inner());
        }
        Ordering::Equal
    })
}

/// `@size(value)`: refuse strings, bytes and lists longer than the limit;
/// charge their length.
fn size_meter<'c, 'v>(
    ftx: &mut FunctionContext<'c, 'v>,
    max_len: usize,
) -> Result<CowVal<'c, 'v>, ExecutionError> {
    let Some(value) = ftx.args.first() else {
        return Err(ExecutionError::invalid_argument_count(1, 0));
    };
    let len = if let Some(s) = value.downcast_ref::<CelString>() {
        s.inner().len()
    } else if let Some(b) = value.downcast_ref::<CelBytes>() {
        b.inner().len()
    } else if let Some(l) = value.downcast_ref::<CelList>() {
        l.inner().len()
    } else {
        0
    };
    if len > max_len {
        return Err(ExecutionError::function_error(SIZE_METER, SIZE_MARK));
    }
    charge(ftx, len as u64 / 16)?;
    Ok(ftx.args.swap_remove(0))
}

/// Map a `cel` error to ours, without quoting any value.
fn classify(error: &ExecutionError, limits: &Limits) -> EvaluateError {
    match error {
        ExecutionError::FunctionError { function, message } if function == RANGE_METER => {
            if message == BUDGET_MARK {
                EvaluateError::BudgetExhausted {
                    budget: limits.budget,
                }
            } else {
                EvaluateError::Failed("comprehension range".into())
            }
        }
        ExecutionError::FunctionError { function, message } if function == SIZE_METER => {
            if message == SIZE_MARK {
                EvaluateError::ValueTooLarge {
                    max: limits.max_value_len,
                }
            } else {
                EvaluateError::BudgetExhausted {
                    budget: limits.budget,
                }
            }
        }
        other => EvaluateError::Failed(describe(other)),
    }
}

/// What went wrong, naming functions, fields and types only.
pub(crate) fn describe(error: &ExecutionError) -> String {
    match error {
        ExecutionError::InvalidArgumentCount { expected, actual } => {
            format!("expected {expected} argument(s), got {actual}")
        }
        ExecutionError::NoSuchKey(key) => format!("no such key `{key}`"),
        ExecutionError::NoSuchOverload(overload) => overload.to_string(),
        ExecutionError::UndeclaredReference(name) => format!("undeclared reference `{name}`"),
        ExecutionError::UnexpectedType { want, .. } => format!("unexpected type, want {want}"),
        ExecutionError::ValuesNotComparable(..) => "values are not comparable".into(),
        ExecutionError::DivisionByZero(_) => "division by zero".into(),
        ExecutionError::RemainderByZero(_) => "remainder by zero".into(),
        ExecutionError::Overflow(op, ..) => format!("overflow in `{op}`"),
        ExecutionError::IndexOutOfBounds(_) => "index out of bounds".into(),
        ExecutionError::DuplicateKey(_) => "duplicate map key".into(),
        ExecutionError::UnsupportedKeyType(_) => "unsupported map key type".into(),
        ExecutionError::UnsupportedIndex(..) => "unsupported index".into(),
        ExecutionError::UnsupportedBinaryOperator(op, ..) => {
            format!("operator `{op}` does not apply to these types")
        }
        ExecutionError::FunctionError { function, message }
            if function == "decimal" || function == "round" || function.starts_with("_") =>
        {
            format!("{function}: {message}")
        }
        ExecutionError::FunctionError { function, .. } => format!("function `{function}` failed"),
        ExecutionError::MissingArgumentOrTarget => "missing argument or target".into(),
        _ => "evaluation error".into(),
    }
}

/// Parse, check and meter `source`. `variables` are the names the
/// expression may read.
pub fn compile(
    source: &str,
    variables: &[&str],
    limits: &Limits,
) -> Result<Expression, CompileExpressionError> {
    if source.len() > limits.max_source_len {
        return Err(CompileExpressionError::SourceTooLong {
            len: source.len(),
            max: limits.max_source_len,
        });
    }
    let operators = operator_chars(source);
    if operators > limits.max_operators {
        return Err(CompileExpressionError::TooManyNodes {
            nodes: operators,
            max: limits.max_operators,
        });
    }
    let parsed = environment()
        .parser()
        .enable_optional_syntax(false)
        .max_recursion_depth(limits.max_depth)
        .parse(source)
        .map_err(|errors| {
            CompileExpressionError::Parse(
                errors
                    .errors
                    .first()
                    .map(|e| format!("{}:{}: {}", e.pos.0, e.pos.1, e.msg))
                    .unwrap_or_else(|| "syntax error".into()),
            )
        })?;
    let mut checker = Checker {
        limits,
        scope: variables.iter().map(|v| v.to_string()).collect(),
        nodes: 0,
    };
    checker.check(&parsed, 0, 1)?;
    let nodes = checker.nodes;
    let mut metered = parsed.clone();
    let mut next_id = max_id(&parsed) + 1;
    meter(&mut metered, &mut next_id);
    Ok(Expression {
        source: source.to_owned(),
        metered,
        plain: parsed,
        nodes,
    })
}

struct Checker<'a> {
    limits: &'a Limits,
    scope: Vec<String>,
    nodes: usize,
}

impl Checker<'_> {
    fn check(
        &mut self,
        expr: &IdedExpr,
        nesting: usize,
        depth: usize,
    ) -> Result<(), CompileExpressionError> {
        self.nodes += 1;
        if depth > self.limits.max_tree_depth {
            return Err(CompileExpressionError::TooDeep {
                depth,
                max: self.limits.max_tree_depth,
            });
        }
        let d = depth + 1;
        if self.nodes > self.limits.max_nodes {
            return Err(CompileExpressionError::TooManyNodes {
                nodes: self.nodes,
                max: self.limits.max_nodes,
            });
        }
        match &expr.expr {
            Expr::Literal(_) => Ok(()),
            Expr::Ident(name) => {
                if self.scope.iter().any(|s| s == name) || TYPE_NAMES.contains(&name.as_str()) {
                    Ok(())
                } else {
                    Err(CompileExpressionError::UnknownVariable(name.clone()))
                }
            }
            Expr::Select(select) => self.check(&select.operand, nesting, d),
            Expr::Call(call) => self.check_call(call, nesting, d),
            Expr::List(list) => {
                if !list.optional_indices.is_empty() {
                    return Err(CompileExpressionError::Optional);
                }
                list.elements
                    .iter()
                    .try_for_each(|e| self.check(e, nesting, d))
            }
            Expr::Map(map) => map.entries.iter().try_for_each(|entry| match &entry.expr {
                EntryExpr::MapEntry(e) if !e.optional => {
                    self.check(&e.key, nesting, d)?;
                    self.check(&e.value, nesting, d)
                }
                EntryExpr::MapEntry(_) => Err(CompileExpressionError::Optional),
                EntryExpr::StructField(_) => Err(CompileExpressionError::Parse(
                    "message construction is not available to rules".into(),
                )),
            }),
            Expr::Comprehension(c) => {
                let inner = nesting + 1;
                if inner > self.limits.max_comprehension_nesting {
                    return Err(CompileExpressionError::NestingTooDeep {
                        depth: inner,
                        max: self.limits.max_comprehension_nesting,
                    });
                }
                self.check(&c.iter_range, nesting, d)?;
                self.check(&c.accu_init, nesting, d)?;
                let before = self.scope.len();
                self.scope.push(c.accu_var.clone());
                self.scope.push(c.iter_var.clone());
                if let Some(var) = &c.iter_var2 {
                    self.scope.push(var.clone());
                }
                self.check(&c.loop_cond, inner, d)?;
                self.check(&c.loop_step, inner, d)?;
                self.scope.truncate(before + 1);
                self.check(&c.result, nesting, d)?;
                self.scope.truncate(before);
                Ok(())
            }
            Expr::Struct(_) => Err(CompileExpressionError::Parse(
                "message construction is not available to rules".into(),
            )),
            Expr::Unspecified => Err(CompileExpressionError::Parse("empty expression".into())),
        }
    }

    fn check_call(
        &mut self,
        call: &CallExpr,
        nesting: usize,
        d: usize,
    ) -> Result<(), CompileExpressionError> {
        let name = call.func_name.as_str();
        let allowed = match &call.target {
            None => OPERATORS.contains(&name) || GLOBAL_FUNCTIONS.contains(&name),
            Some(_) => MEMBER_FUNCTIONS.contains(&name),
        };
        if !allowed {
            if name == operators::OPT_INDEX || name == operators::OPT_SELECT {
                return Err(CompileExpressionError::Optional);
            }
            return Err(CompileExpressionError::FunctionNotAllowed(name.to_owned()));
        }
        if name == "matches" {
            let pattern = match &call.target {
                Some(_) => call.args.first(),
                None => call.args.get(1),
            };
            match pattern.map(|p| &p.expr) {
                Some(Expr::Literal(LiteralValue::String(s)))
                    if s.inner().len() <= MAX_PATTERN_LEN => {}
                _ => return Err(CompileExpressionError::PatternNotLiteral),
            }
        }
        if let Some(target) = &call.target {
            self.check(target, nesting, d)?;
        }
        call.args.iter().try_for_each(|a| self.check(a, nesting, d))
    }
}

/// Operator and separator characters anywhere in the source (inside string
/// literals too: counting them is conservative, and no quoting rule of the
/// lexer can hide an operator chain from the count).
fn operator_chars(source: &str) -> usize {
    source
        .bytes()
        .filter(|b| {
            matches!(
                b,
                b'+' | b'-'
                    | b'*'
                    | b'/'
                    | b'%'
                    | b'!'
                    | b'<'
                    | b'>'
                    | b'='
                    | b'&'
                    | b'|'
                    | b'?'
                    | b':'
                    | b'.'
                    | b'['
                    | b'('
                    | b','
            )
        })
        .count()
}

fn max_id(expr: &IdedExpr) -> u64 {
    let mut max = expr.id;
    visit(expr, &mut |e| max = max.max(e.id));
    max
}

fn visit(expr: &IdedExpr, f: &mut dyn FnMut(&IdedExpr)) {
    f(expr);
    match &expr.expr {
        Expr::Select(s) => visit(&s.operand, f),
        Expr::Call(c) => {
            if let Some(t) = &c.target {
                visit(t, f);
            }
            c.args.iter().for_each(|a| visit(a, f));
        }
        Expr::List(l) => l.elements.iter().for_each(|e| visit(e, f)),
        Expr::Map(m) => m.entries.iter().for_each(|entry| {
            if let EntryExpr::MapEntry(e) = &entry.expr {
                visit(&e.key, f);
                visit(&e.value, f);
            }
        }),
        Expr::Comprehension(c) => {
            visit(&c.iter_range, f);
            visit(&c.accu_init, f);
            visit(&c.loop_cond, f);
            visit(&c.loop_step, f);
            visit(&c.result, f);
        }
        _ => {}
    }
}

fn count(expr: &IdedExpr) -> u64 {
    let mut n = 0;
    visit(expr, &mut |_| n += 1);
    n
}

fn is_number_literal(expr: &IdedExpr) -> bool {
    matches!(
        expr.expr,
        Expr::Literal(LiteralValue::Int(_))
            | Expr::Literal(LiteralValue::UInt(_))
            | Expr::Literal(LiteralValue::Double(_))
    )
}

fn wrap(expr: &mut IdedExpr, function: &str, extra: Option<IdedExpr>, next_id: &mut u64) {
    let inner = std::mem::take(expr);
    let mut args = vec![inner];
    args.extend(extra);
    *expr = IdedExpr {
        id: *next_id,
        expr: Expr::Call(CallExpr {
            func_name: function.to_owned(),
            target: None,
            args,
        }),
    };
    *next_id += 1;
}

/// Insert the meters (see the module docs).
fn meter(expr: &mut IdedExpr, next_id: &mut u64) {
    match &mut expr.expr {
        Expr::Select(s) => meter(&mut s.operand, next_id),
        Expr::Call(c) => {
            if let Some(t) = &mut c.target {
                meter(t, next_id);
            }
            c.args.iter_mut().for_each(|a| meter(a, next_id));
            let sized = c.func_name == operators::ADD
                && c.target.is_none()
                && !c.args.iter().any(is_number_literal);
            if sized {
                wrap(expr, SIZE_METER, None, next_id);
            }
        }
        Expr::List(l) => l.elements.iter_mut().for_each(|e| meter(e, next_id)),
        Expr::Map(m) => m.entries.iter_mut().for_each(|entry| {
            if let EntryExpr::MapEntry(e) = &mut entry.expr {
                meter(&mut e.key, next_id);
                meter(&mut e.value, next_id);
            }
        }),
        Expr::Comprehension(c) => {
            let cost = count(&c.loop_cond) + count(&c.loop_step) + 1;
            meter(&mut c.iter_range, next_id);
            meter(&mut c.accu_init, next_id);
            meter(&mut c.loop_cond, next_id);
            meter(&mut c.loop_step, next_id);
            meter(&mut c.result, next_id);
            let cost = IdedExpr {
                id: *next_id,
                expr: Expr::Literal(LiteralValue::Int(CelInt::from(cost as i64))),
            };
            *next_id += 1;
            wrap(&mut c.iter_range, RANGE_METER, Some(cost), next_id);
        }
        _ => {}
    }
}

/// Named CEL values an expression reads.
#[derive(Default)]
pub struct Inputs<'v> {
    values: Vec<(String, Box<dyn Val + 'v>)>,
    count: usize,
    max: usize,
}

impl std::fmt::Debug for Inputs<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inputs")
            .field(
                "names",
                &self.values.iter().map(|(n, _)| n).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl<'v> Inputs<'v> {
    /// No inputs yet, with the default input limit.
    pub fn new() -> Inputs<'v> {
        Inputs::with_limit(Limits::default().max_input_values)
    }

    /// No inputs yet; at most `max` JSON values in all.
    pub fn with_limit(max: usize) -> Inputs<'v> {
        Inputs {
            values: Vec::new(),
            count: 0,
            max,
        }
    }

    /// Bind `name` to a JSON value, converted as a FHIR resource: see
    /// [`Inputs::add_json`]'s rules in the module docs of
    /// [`crate::rules`]. Strings are borrowed, not copied.
    pub fn add_json(&mut self, name: &str, value: &'v Json) -> Result<(), EvaluateError> {
        let val = self.convert(value, false, 0)?;
        self.add_val(name, val);
        Ok(())
    }

    /// Bind `name` to a list of JSON values (e.g. the chart's Conditions).
    pub fn add_json_list(&mut self, name: &str, values: &[&'v Json]) -> Result<(), EvaluateError> {
        let list = self.json_list(values)?;
        self.add_val(name, list);
        Ok(())
    }

    /// Convert a list of JSON values, counting them against these inputs' limit.
    pub fn json_list(&mut self, values: &[&'v Json]) -> Result<Box<dyn Val + 'v>, EvaluateError> {
        let mut items = Vec::with_capacity(values.len());
        for value in values {
            items.push(self.convert(value, false, 1)?);
        }
        Ok(Box::new(CelList::from(items)))
    }

    /// Bind `name` to a ready CEL value.
    pub fn add_val(&mut self, name: &str, value: Box<dyn Val + 'v>) {
        self.values.retain(|(n, _)| n != name);
        self.values.push((name.to_owned(), value));
    }

    /// Bind `name` to a JSON value converted as plain CEL (every number a
    /// `double` unless it is a JSON integer): for differential tests
    /// against other CEL implementations, which know no `decimal`.
    pub fn add_plain_json(&mut self, name: &str, value: &'v Json) -> Result<(), EvaluateError> {
        let val = self.convert_plain(value, 0)?;
        self.add_val(name, val);
        Ok(())
    }

    fn tick(&mut self, depth: usize) -> Result<(), EvaluateError> {
        self.count += 1;
        if self.count > self.max || depth > 128 {
            return Err(EvaluateError::InputTooLarge { max: self.max });
        }
        Ok(())
    }

    fn convert(
        &mut self,
        value: &'v Json,
        decimal: bool,
        depth: usize,
    ) -> Result<Box<dyn Val + 'v>, EvaluateError> {
        self.tick(depth)?;
        Ok(match value {
            Json::Null => Box::new(CelNull),
            Json::Bool(b) => Box::new(CelBool::from(*b)),
            Json::Number(n) => number(&n.to_string(), decimal)?,
            Json::String(s) => Box::new(CelString::from(s.as_str())),
            Json::Array(items) => {
                let mut list = Vec::with_capacity(items.len());
                for item in items {
                    list.push(self.convert(item, decimal, depth + 1)?);
                }
                Box::new(CelList::from(list))
            }
            Json::Object(members) => {
                // Money and Quantity values are FHIR decimals however they
                // are written, so a rule sees one type for them on every claim.
                let measured = members.contains_key("currency")
                    || ["unit", "system", "code", "comparator"]
                        .iter()
                        .any(|k| members.contains_key(*k));
                let mut map: HashMap<CelMapKey<'v>, Box<dyn Val + 'v>> =
                    HashMap::with_capacity(members.len());
                for (key, item) in members {
                    let decimal = (measured && key == "value") || key == "factor";
                    let item = self.convert(item, decimal, depth + 1)?;
                    map.insert(CelMapKey::from(key.as_str()), item);
                }
                Box::new(CelMap::from(map))
            }
        })
    }

    fn convert_plain(
        &mut self,
        value: &'v Json,
        depth: usize,
    ) -> Result<Box<dyn Val + 'v>, EvaluateError> {
        self.tick(depth)?;
        Ok(match value {
            Json::Number(n) => {
                if let Some(i) = n.as_i64() {
                    Box::new(CelInt::from(i))
                } else if let Some(u) = n.as_u64() {
                    Box::new(CelUInt::from(u))
                } else {
                    Box::new(CelDouble::from(n.as_f64().unwrap_or(f64::NAN)))
                }
            }
            Json::Array(items) => {
                let mut list = Vec::with_capacity(items.len());
                for item in items {
                    list.push(self.convert_plain(item, depth + 1)?);
                }
                Box::new(CelList::from(list))
            }
            Json::Object(members) => {
                let mut map: HashMap<CelMapKey<'v>, Box<dyn Val + 'v>> =
                    HashMap::with_capacity(members.len());
                for (key, item) in members {
                    let item = self.convert_plain(item, depth + 1)?;
                    map.insert(CelMapKey::from(key.as_str()), item);
                }
                Box::new(CelMap::from(map))
            }
            other => self.convert(other, false, depth)?,
        })
    }
}

/// A JSON number: an `int` when written as an integer that fits, else (or
/// in a decimal position) an exact `decimal`.
fn number<'v>(text: &str, decimal: bool) -> Result<Box<dyn Val + 'v>, EvaluateError> {
    let integral = !text.contains(['.', 'e', 'E']);
    if integral && !decimal {
        if let Ok(i) = text.parse::<i64>() {
            return Ok(Box::new(CelInt::from(i)));
        }
    }
    parse_decimal(text)
        .map(|d| Box::new(CelDecimal(d)) as Box<dyn Val>)
        .ok_or(EvaluateError::NumberOutOfRange)
}

/// The result of an evaluation, owned.
#[derive(Clone, Debug, PartialEq)]
pub enum Evaluated {
    /// `null`.
    Null,
    /// A `bool`.
    Bool(bool),
    /// An `int`.
    Int(i64),
    /// A `uint`.
    UInt(u64),
    /// A `double`.
    Double(f64),
    /// A `string`.
    String(String),
    /// `bytes`.
    Bytes(Vec<u8>),
    /// A `decimal`.
    Decimal(rust_decimal::Decimal),
    /// A `list`.
    List(Vec<Evaluated>),
    /// A `map`, entries sorted by key.
    Map(Vec<(Evaluated, Evaluated)>),
    /// A value of another type (a type value, …), by its type name.
    Other(String),
}

impl Evaluated {
    fn from_val(value: &dyn Val) -> Evaluated {
        if value.downcast_ref::<CelNull>().is_some() {
            Evaluated::Null
        } else if let Some(b) = value.downcast_ref::<CelBool>() {
            Evaluated::Bool(*b.inner())
        } else if let Some(i) = value.downcast_ref::<CelInt>() {
            Evaluated::Int(*i.inner())
        } else if let Some(u) = value.downcast_ref::<CelUInt>() {
            Evaluated::UInt(*u.inner())
        } else if let Some(d) = value.downcast_ref::<CelDouble>() {
            Evaluated::Double(*d.inner())
        } else if let Some(s) = value.downcast_ref::<CelString>() {
            Evaluated::String(s.inner().to_owned())
        } else if let Some(b) = value.downcast_ref::<CelBytes>() {
            Evaluated::Bytes(b.inner().to_vec())
        } else if let Some(d) = value.downcast_ref::<CelDecimal>() {
            Evaluated::Decimal(d.0)
        } else if let Some(l) = value.downcast_ref::<CelList>() {
            Evaluated::List(
                l.inner()
                    .iter()
                    .map(|v| Evaluated::from_val(v.as_ref()))
                    .collect(),
            )
        } else if let Some(m) = value.downcast_ref::<CelMap>() {
            let mut keys = Vec::new();
            if let Some(iterable) = m.as_iterable() {
                let mut items = iterable.iter();
                while let Some(key) = items.next() {
                    keys.push(key);
                }
            }
            keys.sort_by(|a, b| key_order(*a, *b));
            let indexer = m.as_indexer();
            let mut out = Vec::with_capacity(keys.len());
            for key in keys {
                let item = indexer.and_then(|ix| ix.get(key).ok());
                out.push((
                    Evaluated::from_val(key),
                    item.map(|v| Evaluated::from_val(v.as_ref()))
                        .unwrap_or(Evaluated::Null),
                ));
            }
            Evaluated::Map(out)
        } else {
            Evaluated::Other(value.get_type().name().to_owned())
        }
    }

    /// The value as tagged JSON (`{"int": 1}`, `{"decimal": "1.50"}`, …):
    /// the form differential tests compare.
    pub fn to_tagged_json(&self) -> Json {
        use serde_json::json;
        match self {
            Evaluated::Null => json!({ "null": null }),
            Evaluated::Bool(b) => json!({ "bool": b }),
            Evaluated::Int(i) => json!({ "int": i }),
            Evaluated::UInt(u) => json!({ "uint": u }),
            Evaluated::Double(d) => {
                if d.is_finite() {
                    json!({ "double": d })
                } else {
                    json!({ "double": d.to_string() })
                }
            }
            Evaluated::String(s) => json!({ "string": s }),
            Evaluated::Bytes(b) => json!({ "bytes": hex::encode(b) }),
            Evaluated::Decimal(d) => json!({ "decimal": d.to_string() }),
            Evaluated::List(items) => {
                json!({ "list": items.iter().map(Evaluated::to_tagged_json).collect::<Vec<_>>() })
            }
            Evaluated::Map(entries) => json!({ "map": entries
                .iter()
                .map(|(k, v)| json!([k.to_tagged_json(), v.to_tagged_json()]))
                .collect::<Vec<_>>() }),
            Evaluated::Other(name) => json!({ "other": name }),
        }
    }
}

impl std::fmt::Display for Evaluated {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Evaluated::Null => f.write_str("null"),
            Evaluated::Bool(b) => write!(f, "{b}"),
            Evaluated::Int(i) => write!(f, "{i}"),
            Evaluated::UInt(u) => write!(f, "{u}u"),
            Evaluated::Double(d) => write!(f, "{d:?}"),
            Evaluated::String(s) => write!(f, "{s:?}"),
            Evaluated::Bytes(b) => write!(f, "b'{}'", hex::encode(b)),
            Evaluated::Decimal(d) => write!(f, "decimal({d})"),
            Evaluated::List(items) => {
                f.write_str("[")?;
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{item}")?;
                }
                f.write_str("]")
            }
            Evaluated::Map(entries) => {
                f.write_str("{")?;
                for (i, (k, v)) in entries.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{k}: {v}")?;
                }
                f.write_str("}")
            }
            Evaluated::Other(name) => write!(f, "<{name}>"),
        }
    }
}

/// Names in scope, as a sorted set (for error messages and docs).
pub fn variables_of(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|n| n.to_string()).collect()
}
