//! The univariate functions one bootstrap evaluates: every elementwise node
//! between two linear segments, fused (with the requantisation around them)
//! into one expression of the single input `x`, e.g. `Relu`, `x*x then
//! Relu`, or `x*x + (x*x)*(x*x)` for a branch that rejoins.

use std::fmt;

use heman_model::ops::elementwise::BinaryKind;
use heman_model::ops::Activation;
use serde::{Deserialize, Serialize};

/// One elementwise nonlinearity.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Function {
    /// `x * x`.
    Square,
    /// `x^k` for an integer `k`.
    Pow(i32),
    /// An elementwise activation of the model crate (Relu, LeakyRelu, Clip...).
    Activation(Activation),
}

impl Function {
    /// The function's value at `x`.
    pub fn apply(&self, x: f64) -> f64 {
        match self {
            Function::Square => x * x,
            Function::Pow(k) => x.powi(*k),
            Function::Activation(a) => a.apply(x),
        }
    }

    fn format(&self, arg: &str) -> String {
        match self {
            Function::Square => format!("{arg}*{arg}"),
            Function::Pow(k) => format!("{arg}^{k}"),
            Function::Activation(Activation::LeakyRelu { alpha }) => {
                format!("LeakyRelu({arg}, {alpha})")
            }
            Function::Activation(Activation::Clip { min, max }) => {
                format!("Clip({arg}, {min}, {max})")
            }
            Function::Activation(a) => format!("{}({arg})", a.name()),
        }
    }
}

/// A term of an [`Expression`]; operands refer to earlier terms.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Term {
    /// The expression's input `x`.
    Input,
    /// A constant.
    Constant(f64),
    /// A function of an earlier term (by index).
    Unary(Function, usize),
    /// An elementwise binary operator on two earlier terms (by index).
    Binary(BinaryKind, usize, usize),
}

/// An elementwise function of one input as a small expression DAG whose
/// last term is the result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Expression {
    /// The terms in evaluation order; the last is the result.
    pub terms: Vec<Term>,
}

impl Expression {
    /// `f(x)`.
    pub fn unary(f: Function) -> Self {
        Self {
            terms: vec![Term::Input, Term::Unary(f, 0)],
        }
    }

    /// The identity, `x`.
    pub fn input() -> Self {
        Self {
            terms: vec![Term::Input],
        }
    }

    /// Appends a term, returning its index.
    pub fn push(&mut self, term: Term) -> usize {
        self.terms.push(term);
        self.terms.len() - 1
    }

    /// `next(self(x))`.
    pub fn then(&self, next: &Expression) -> Expression {
        let mut terms = self.terms.clone();
        let base = terms.len();
        let result = base.saturating_sub(1);
        let shift = |i: usize| if i == 0 { result } else { base + i - 1 };
        for term in &next.terms[1..] {
            terms.push(match *term {
                Term::Input => Term::Unary(Function::Pow(1), result),
                Term::Constant(c) => Term::Constant(c),
                Term::Unary(f, a) => Term::Unary(f, shift(a)),
                Term::Binary(k, a, b) => Term::Binary(k, shift(a), shift(b)),
            });
        }
        Expression { terms }
    }

    /// The expression's value at `x`.
    pub fn apply(&self, x: f64) -> f64 {
        let mut values = Vec::with_capacity(self.terms.len());
        for term in &self.terms {
            let v = match *term {
                Term::Input => x,
                Term::Constant(c) => c,
                Term::Unary(f, a) => f.apply(values[a]),
                Term::Binary(kind, a, b) => kind.apply(values[a], values[b]),
            };
            values.push(v);
        }
        values.last().copied().unwrap_or(x)
    }

    fn format(&self, index: usize) -> String {
        match &self.terms[index] {
            Term::Input => "x".into(),
            Term::Constant(c) => format!("{c}"),
            Term::Unary(f, a) => f.format(&self.format(*a)),
            Term::Binary(BinaryKind::PRelu, a, b) => {
                format!("PRelu({}, {})", self.format(*a), self.format(*b))
            }
            Term::Binary(kind, a, b) => {
                let op = match kind {
                    BinaryKind::Add => "+",
                    BinaryKind::Sub => "-",
                    BinaryKind::Mul => "*",
                    _ => "/",
                };
                format!("({} {op} {})", self.format(*a), self.format(*b))
            }
        }
    }
}

impl fmt::Display for Expression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.terms.is_empty() {
            return write!(f, "x");
        }
        write!(f, "{}", self.format(self.terms.len() - 1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expressions_evaluate_and_print() {
        let mut e = Expression::input();
        let s = e.push(Term::Unary(Function::Square, 0));
        let q = e.push(Term::Unary(Function::Square, s));
        e.push(Term::Binary(BinaryKind::Add, s, q));
        assert_eq!(e.apply(2.0), 4.0 + 16.0);
        assert_eq!(e.to_string(), "(x*x + x*x*x*x)");
        let r = Expression::unary(Function::Activation(Activation::Relu));
        assert_eq!(r.apply(-1.5), 0.0);
        assert_eq!(r.to_string(), "Relu(x)");
        let both = e.then(&r);
        assert_eq!(both.apply(-2.0), 20.0);
        assert_eq!(both.to_string(), "Relu((x*x + x*x*x*x))");
    }
}
