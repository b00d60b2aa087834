//! Generated CEL expressions and inputs, evaluated by careledger's rule
//! engine, written as JSON lines for the differential test
//! (`tests/rules/differential.sh` evaluates them again with the PyPI
//! `cel-python` package and compares).
//!
//! `cel_cases [COUNT] [SEED]` (defaults 2000, 1). Each line:
//! `{"expr": …, "input": …, "result": <tagged value> | {"error": "<kind>"}}`
//! where the input is bound to the variable `resource` as plain CEL (JSON
//! integers `int`, other numbers `double`).
//!
//! Expressions stay inside the part of CEL both implementations define the
//! same way: no `decimal` (careledger's own type), no map-order-dependent
//! results (careledger iterates map keys sorted; the spec leaves the order
//! open), no double arithmetic whose text form could differ.

use careledger::rules::engine::{compile, Inputs, Limits};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Value};

const VARS: &[&str] = &["resource"];

struct Gen {
    rng: ChaCha8Rng,
    vars: Vec<String>,
}

impl Gen {
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.rng.random_range(0..items.len())]
    }

    fn int(&mut self, depth: u32) -> String {
        let choice = if depth == 0 {
            self.rng.random_range(0..3)
        } else {
            self.rng.random_range(0..11)
        };
        match choice {
            0 => self.rng.random_range(-20i64..100).to_string(),
            1 => self
                .pick(&[
                    "resource.n",
                    "resource.m",
                    "resource.nums[0]",
                    "resource.nums[1]",
                ])
                .to_owned(),
            2 => {
                if let Some(v) = self.vars.last().cloned() {
                    v
                } else {
                    "resource.n".into()
                }
            }
            3..=5 => {
                let op = self.pick(&["+", "-", "*", "/", "%"]);
                format!("({} {op} {})", self.int(depth - 1), self.int(depth - 1))
            }
            6 => format!("size({})", self.list(depth - 1)),
            7 => format!("size({})", self.string(depth - 1)),
            8 => format!(
                "({} ? {} : {})",
                self.boolean(depth - 1),
                self.int(depth - 1),
                self.int(depth - 1)
            ),
            9 => format!("-{}", self.int(depth - 1)),
            _ => format!(
                "{}.filter(x, x > {}).size()",
                self.list(depth - 1),
                self.rng.random_range(0..20)
            ),
        }
    }

    fn string(&mut self, depth: u32) -> String {
        let choice = if depth == 0 {
            self.rng.random_range(0..2)
        } else {
            self.rng.random_range(0..5)
        };
        match choice {
            0 => format!("'{}'", self.pick(&["a", "bc", "Claim", "", "ab", "xyz"])),
            1 => self.pick(&["resource.s", "resource.t"]).to_owned(),
            2 => format!("({} + {})", self.string(depth - 1), self.string(depth - 1)),
            3 => format!(
                "({} ? {} : {})",
                self.boolean(depth - 1),
                self.string(depth - 1),
                self.string(depth - 1)
            ),
            _ => format!("string({})", self.int(depth - 1)),
        }
    }

    fn list(&mut self, depth: u32) -> String {
        let choice = if depth == 0 {
            self.rng.random_range(0..2)
        } else {
            self.rng.random_range(0..6)
        };
        match choice {
            0 => "resource.nums".into(),
            1 => format!(
                "[{}]",
                (0..self.rng.random_range(0..4))
                    .map(|_| self.rng.random_range(-5i64..20).to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            2 => format!("({} + {})", self.list(depth - 1), self.list(depth - 1)),
            3 if self.vars.len() < 2 => {
                let var = format!("v{}", self.vars.len());
                let range = self.list(depth - 1);
                self.vars.push(var.clone());
                let body = self.int(depth - 1);
                self.vars.pop();
                format!("{range}.map({var}, {body})")
            }
            4 if self.vars.len() < 2 => {
                let var = format!("v{}", self.vars.len());
                let range = self.list(depth - 1);
                self.vars.push(var.clone());
                let body = self.boolean(depth - 1);
                self.vars.pop();
                format!("{range}.filter({var}, {body})")
            }
            _ => "resource.nums".into(),
        }
    }

    fn boolean(&mut self, depth: u32) -> String {
        let choice = if depth == 0 {
            self.rng.random_range(0..2)
        } else {
            self.rng.random_range(0..12)
        };
        match choice {
            0 => self.pick(&["true", "false", "resource.flag"]).to_owned(),
            1 => format!(
                "has(resource.{})",
                self.pick(&["n", "missing", "s", "nested"])
            ),
            2 | 3 => {
                let op = self.pick(&["<", "<=", ">", ">=", "==", "!="]);
                format!("({} {op} {})", self.int(depth - 1), self.int(depth - 1))
            }
            4 => {
                let op = self.pick(&["&&", "||"]);
                format!(
                    "({} {op} {})",
                    self.boolean(depth - 1),
                    self.boolean(depth - 1)
                )
            }
            5 => format!("!{}", self.boolean(depth - 1)),
            6 => format!("({} in {})", self.int(depth - 1), self.list(depth - 1)),
            7 => {
                // The receiver is never a concatenation: cel-python 0.5 returns a
                // plain Python str from `+`, on which its string methods fail.
                let f = self.pick(&["contains", "startsWith", "endsWith"]);
                format!("{}.{f}({})", self.string(0), self.string(depth - 1))
            }
            8 | 9 if self.vars.len() < 2 => {
                let var = format!("v{}", self.vars.len());
                let macro_name = self.pick(&["all", "exists", "exists_one"]);
                let range = self.list(depth - 1);
                self.vars.push(var.clone());
                let body = self.boolean(depth - 1);
                self.vars.pop();
                format!("{range}.{macro_name}({var}, {body})")
            }
            10 => format!("({} == {})", self.string(depth - 1), self.string(depth - 1)),
            _ => format!("({} == {})", self.list(depth - 1), self.list(depth - 1)),
        }
    }

    fn expression(&mut self) -> String {
        let depth = self.rng.random_range(1..5);
        match self.rng.random_range(0..4) {
            0 => self.int(depth),
            1 => self.string(depth),
            2 => self.list(depth),
            _ => self.boolean(depth),
        }
    }

    fn input(&mut self) -> Value {
        let mut input = json!({
            "n": self.rng.random_range(-50i64..50),
            "m": self.rng.random_range(0i64..10),
            "s": self.pick(&["a", "abc", "Claim", ""]),
            "t": self.pick(&["b", "bc", "x"]),
            "flag": self.rng.random_bool(0.5),
            "nums": (0..self.rng.random_range(2..6)).map(|_| self.rng.random_range(-5i64..20)).collect::<Vec<_>>(),
        });
        if self.rng.random_bool(0.5) {
            input["nested"] = json!({"k": 1});
        }
        input
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let count: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(2000);
    let seed: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(1);
    let mut generator = Gen {
        rng: ChaCha8Rng::seed_from_u64(seed),
        vars: Vec::new(),
    };
    let limits = Limits::default();
    for _ in 0..count {
        let expr = generator.expression();
        let input = generator.input();
        let result = match compile(&expr, VARS, &limits) {
            Err(error) => json!({ "error": format!("compile: {error}") }),
            Ok(compiled) => {
                let mut inputs = Inputs::new();
                match inputs.add_plain_json("resource", &input) {
                    Err(error) => json!({ "error": error.to_string() }),
                    Ok(()) => match compiled.evaluate(&inputs, &limits) {
                        Ok(value) => value.to_tagged_json(),
                        Err(error) => json!({ "error": error.to_string() }),
                    },
                }
            }
        };
        println!(
            "{}",
            json!({ "expr": expr, "input": input, "result": result })
        );
    }
}
