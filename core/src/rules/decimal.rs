//! `decimal`: exact decimal numbers in CEL, for money.
//!
//! CEL has `int`, `uint` and `double` only, and money must never pass
//! through a binary float. Rules therefore see every FHIR `decimal` (a
//! `Money.value`, a `Quantity.value`, any JSON number written with a
//! fraction or an exponent) as a value of type `decimal`, an exact decimal
//! of up to 28 significant digits ([`rust_decimal`]).
//!
//! The type follows CEL's own rule for numbers: **no implicit conversion**.
//! `+ - * / %` take a `decimal` on both sides (as `int + double` is an error
//! in CEL), comparisons compare two decimals, and a decimal equals only a
//! decimal of the same value (`decimal('1.50') == decimal('1.5')`). So the
//! order of operands never changes a result, and a rule that mixes types
//! fails the same way on every claim instead of only on some.
//!
//! | expression | result |
//! | --- | --- |
//! | `decimal('0.80')`, `decimal(3)`, `decimal(3u)` | a decimal |
//! | `decimal(0.8)` | error: a double is refused, write `decimal('0.8')` |
//! | `x.round(2)` | rounded to 2 places, half away from zero |
//! | `string(x)` | the decimal's digits (`'215.74'`) |
//!
//! Arithmetic that would overflow 28 digits, and division by zero, are
//! errors. Results keep their exact scale (`decimal('269.68') *
//! decimal('0.80')` is `215.7440`); round explicitly.

use std::any::Any;
use std::cmp::Ordering;
use std::str::FromStr;

use cel::common::traits::{Adder, Comparer, Divider, Modder, Multiplier, Negator, Subtractor};
use cel::common::types::{CelInt, CelString, CelUInt, Type, INT_TYPE, STRING_TYPE, UINT_TYPE};
use cel::common::value::{CowVal, StaticVal, Val};
use cel::{DeclarationError, Env, ExecutionError};
use rust_decimal::{Decimal, RoundingStrategy};

/// The CEL type of decimals.
pub static DECIMAL_TYPE: Type = Type::new_unspecified_type("decimal");

/// Most decimal places `round` accepts (the 28 digits of the representation).
const MAX_SCALE: i64 = 28;

/// A CEL `decimal` value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CelDecimal(pub Decimal);

impl Val for CelDecimal {
    fn get_type(&self) -> &Type {
        &DECIMAL_TYPE
    }

    fn cel_type() -> &'static Type {
        &DECIMAL_TYPE
    }

    fn as_adder<'b, 'v>(&'b self) -> Option<&'b (dyn Adder + 'v)>
    where
        Self: 'v,
    {
        Some(self)
    }

    fn as_subtractor<'b, 'v>(&'b self) -> Option<&'b (dyn Subtractor + 'v)>
    where
        Self: 'v,
    {
        Some(self)
    }

    fn as_multiplier<'b, 'v>(&'b self) -> Option<&'b (dyn Multiplier + 'v)>
    where
        Self: 'v,
    {
        Some(self)
    }

    fn as_divider<'b, 'v>(&'b self) -> Option<&'b (dyn Divider + 'v)>
    where
        Self: 'v,
    {
        Some(self)
    }

    fn as_modder<'b, 'v>(&'b self) -> Option<&'b (dyn Modder + 'v)>
    where
        Self: 'v,
    {
        Some(self)
    }

    fn as_negator<'b, 'v>(&'b self) -> Option<&'b (dyn Negator + 'v)>
    where
        Self: 'v,
    {
        Some(self)
    }

    fn as_comparer(&self) -> Option<&dyn Comparer> {
        Some(self)
    }

    fn equals(&self, other: &dyn Val) -> bool {
        other
            .downcast_ref::<CelDecimal>()
            .is_some_and(|o| o.0 == self.0)
    }

    fn clone_as_boxed<'v>(&self) -> Box<dyn Val + 'v>
    where
        Self: 'v,
    {
        Box::new(*self)
    }

    fn as_any(&self) -> Option<&dyn Any> {
        Some(self)
    }
}

impl StaticVal for CelDecimal {}

fn operand(operator: &str, lhs: &CelDecimal, rhs: &dyn Val) -> Result<Decimal, ExecutionError> {
    rhs.downcast_ref::<CelDecimal>()
        .map(|d| d.0)
        .ok_or_else(|| {
            ExecutionError::no_such_overload(
                operator,
                vec![
                    lhs.get_type().name().to_owned(),
                    rhs.get_type().name().to_owned(),
                ],
            )
        })
}

fn checked(
    operator: &str,
    value: Option<Decimal>,
) -> Result<CowVal<'static, 'static>, ExecutionError> {
    value.map(|d| CowVal::owned(CelDecimal(d))).ok_or_else(|| {
        ExecutionError::function_error(operator, "decimal overflow or division by zero")
    })
}

impl Adder for CelDecimal {
    fn add<'b, 'v>(&'b self, rhs: &(dyn Val + 'v)) -> Result<CowVal<'b, 'v>, ExecutionError>
    where
        Self: 'v,
    {
        checked("_+_", self.0.checked_add(operand("_+_", self, rhs)?))
    }
}

impl Subtractor for CelDecimal {
    fn sub<'b, 'v>(&'b self, rhs: &(dyn Val + 'v)) -> Result<CowVal<'b, 'v>, ExecutionError>
    where
        Self: 'v,
    {
        checked("_-_", self.0.checked_sub(operand("_-_", self, rhs)?))
    }
}

impl Multiplier for CelDecimal {
    fn mul<'b, 'v>(&'b self, rhs: &(dyn Val + 'v)) -> Result<CowVal<'b, 'v>, ExecutionError>
    where
        Self: 'v,
    {
        checked("_*_", self.0.checked_mul(operand("_*_", self, rhs)?))
    }
}

impl Divider for CelDecimal {
    fn div<'b, 'v>(&'b self, rhs: &(dyn Val + 'v)) -> Result<CowVal<'b, 'v>, ExecutionError>
    where
        Self: 'v,
    {
        checked("_/_", self.0.checked_div(operand("_/_", self, rhs)?))
    }
}

impl Modder for CelDecimal {
    fn modulo<'b, 'v>(&'b self, rhs: &(dyn Val + 'v)) -> Result<CowVal<'b, 'v>, ExecutionError>
    where
        Self: 'v,
    {
        checked("_%_", self.0.checked_rem(operand("_%_", self, rhs)?))
    }
}

impl Negator for CelDecimal {
    fn negate<'v>(&self) -> Result<Box<dyn Val + 'v>, ExecutionError>
    where
        Self: 'v,
    {
        Ok(Box::new(CelDecimal(-self.0)))
    }
}

impl Comparer for CelDecimal {
    fn compare(&self, rhs: &dyn Val) -> Result<Ordering, ExecutionError> {
        Ok(self.0.cmp(&operand("_<_", self, rhs)?))
    }
}

/// Parse decimal text exactly: an optional sign, digits, an optional
/// fraction, an optional exponent (JSON number syntax). `None` if it is not
/// a number or does not fit 28 digits.
pub fn parse_decimal(text: &str) -> Option<Decimal> {
    let text = text.trim();
    if text.is_empty() || text.len() > 64 {
        return None;
    }
    if text.contains(['e', 'E']) {
        Decimal::from_scientific(text).ok()
    } else {
        Decimal::from_str_exact(text).ok()
    }
}

fn decimal_of_string<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let text = args
        .first()
        .and_then(|a| a.downcast_ref::<CelString>())
        .map(|s| s.inner().to_string())
        .unwrap_or_default();
    parse_decimal(&text)
        .map(|d| CowVal::owned(CelDecimal(d)))
        .ok_or_else(|| {
            ExecutionError::function_error("decimal", "the text is not a decimal of ≤ 28 digits")
        })
}

fn decimal_of_int<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let value = args
        .first()
        .and_then(|a| a.downcast_ref::<CelInt>())
        .map(|i| *i.inner())
        .unwrap_or_default();
    Ok(CowVal::owned(CelDecimal(Decimal::from(value))))
}

fn decimal_of_uint<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let value = args
        .first()
        .and_then(|a| a.downcast_ref::<CelUInt>())
        .map(|i| *i.inner())
        .unwrap_or_default();
    Ok(CowVal::owned(CelDecimal(Decimal::from(value))))
}

fn decimal_of_decimal<'b, 'v>(
    mut args: Vec<CowVal<'b, 'v>>,
) -> Result<CowVal<'b, 'v>, ExecutionError> {
    args.pop()
        .ok_or_else(|| ExecutionError::invalid_argument_count(1, 0))
}

fn decimal_round<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let value = args
        .first()
        .and_then(|a| a.downcast_ref::<CelDecimal>())
        .map(|d| d.0)
        .unwrap_or_default();
    let places = args
        .get(1)
        .and_then(|a| a.downcast_ref::<CelInt>())
        .map(|i| *i.inner())
        .unwrap_or_default();
    if !(0..=MAX_SCALE).contains(&places) {
        return Err(ExecutionError::function_error(
            "round",
            "decimal places must be between 0 and 28",
        ));
    }
    Ok(CowVal::owned(CelDecimal(value.round_dp_with_strategy(
        places as u32,
        RoundingStrategy::MidpointAwayFromZero,
    ))))
}

fn decimal_to_string<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let value = args
        .first()
        .and_then(|a| a.downcast_ref::<CelDecimal>())
        .map(|d| d.0)
        .unwrap_or_default();
    Ok(CowVal::owned(CelString::from(value.to_string())))
}

/// Declare the `decimal` type and its functions on `env`.
pub(crate) fn declare(env: &mut Env) -> Result<(), DeclarationError> {
    env.add_type(DECIMAL_TYPE.to_owned())?;
    env.add_overload(
        "decimal",
        "decimal_string",
        vec![STRING_TYPE.to_owned()],
        decimal_of_string,
    )?;
    env.add_overload(
        "decimal",
        "decimal_int",
        vec![INT_TYPE.to_owned()],
        decimal_of_int,
    )?;
    env.add_overload(
        "decimal",
        "decimal_uint",
        vec![UINT_TYPE.to_owned()],
        decimal_of_uint,
    )?;
    env.add_overload(
        "decimal",
        "decimal_decimal",
        vec![DECIMAL_TYPE.to_owned()],
        decimal_of_decimal,
    )?;
    env.add_member_overload(
        "round",
        "decimal_round_int",
        DECIMAL_TYPE.to_owned(),
        vec![INT_TYPE.to_owned()],
        decimal_round,
    )?;
    env.add_overload(
        "string",
        "string_decimal",
        vec![DECIMAL_TYPE.to_owned()],
        decimal_to_string,
    )?;
    Ok(())
}

impl FromStr for CelDecimal {
    type Err = ();

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        parse_decimal(text).map(CelDecimal).ok_or(())
    }
}
