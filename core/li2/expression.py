"""A safe parser and evaluator for the polynomials of `expression` tasks: f(x, y) mod modulus.

User text is never passed to eval, compile or ast: a small recursive-descent parser turns it into a
tuple tree, and `evaluate_expression` walks that tree with numpy, reducing after every operation so
nothing overflows. Errors are `SpecError`s on the field task.expression that say what is allowed.

Grammar (recursive descent; no eval, compile or ast anywhere):
    expr   := term (('+' | '-') term)*
    term   := unary ('*' unary)*
    unary  := '-' unary | power
    power  := atom ('**' INT)?          exponent: an integer literal 0..MAX_EXPONENT
    atom   := INT | 'x' | 'y' | '(' expr ')'
"""

from __future__ import annotations

import re

import numpy as np

from li2.errors import SpecError

MAX_EXPONENT = 8  # largest integer exponent an expression may use (x**8)

_TOKEN = re.compile(r"\s*(?:(\d+)|(\*\*|[-+*()])|([xy])(?![A-Za-z0-9_]))")
MAX_EXPRESSION_LENGTH = 200


def _tokenize(text: str) -> list[str]:
    tokens, pos = [], 0
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            bad = text[pos:].lstrip()[:12]
            raise SpecError(
                {
                    "task.expression": [
                        f"unexpected {bad!r} at position {pos}: only integers, x, y, + - *, ** with an "
                        f"integer exponent ≤ {MAX_EXPONENT}, and parentheses are allowed"
                    ]
                }
            )
        tokens.append(m.group(1) or m.group(2) or m.group(3))
        pos = m.end()
    return tokens


class _Parser:
    """Parses tokens into nested tuples: ("num", v) ("var", "x") ("neg", e) ("+"|"-"|"*", l, r) ("**", e, n)."""

    def __init__(self, tokens: list[str]):
        self.toks, self.i = tokens, 0

    def _fail(self, what: str):
        raise SpecError({"task.expression": [what]})

    def peek(self) -> str | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self) -> str:
        tok = self.peek()
        if tok is None:
            self._fail("ends too early: expected a number, x, y or '('")
        self.i += 1
        return tok

    def parse(self):
        node = self.expr()
        if self.peek() is not None:
            self._fail(f"unexpected {self.peek()!r} after a complete expression")
        return node

    def expr(self):
        node = self.term()
        while self.peek() in ("+", "-"):
            op = self.take()
            node = (op, node, self.term())
        return node

    def term(self):
        node = self.unary()
        while self.peek() == "*":
            self.take()
            node = ("*", node, self.unary())
        return node

    def unary(self):
        if self.peek() == "-":
            self.take()
            return ("neg", self.unary())
        return self.power()

    def power(self):
        node = self.atom()
        if self.peek() == "**":
            self.take()
            tok = self.take()
            if not tok.isdigit() or int(tok) > MAX_EXPONENT:
                self._fail(f"exponent must be an integer literal 0..{MAX_EXPONENT}, got {tok!r}")
            node = ("**", node, int(tok))
        return node

    def atom(self):
        tok = self.take()
        if tok.isdigit():
            return ("num", int(tok))
        if tok in ("x", "y"):
            return ("var", tok)
        if tok == "(":
            node = self.expr()
            if self.take() != ")":
                self._fail("missing ')'")
            return node
        self._fail(f"unexpected {tok!r}: expected a number, x, y or '('")


def parse_expression(text: str):
    """Parse a polynomial in x, y into a small tuple tree; SpecError on field task.expression."""
    if not isinstance(text, str) or not text.strip():
        raise SpecError({"task.expression": ["must be a non-empty polynomial in x and y, e.g. 'x**2 + x*y + y**2'"]})
    if len(text) > MAX_EXPRESSION_LENGTH:
        raise SpecError({"task.expression": [f"must be at most {MAX_EXPRESSION_LENGTH} characters"]})
    return _Parser(_tokenize(text)).parse()


def evaluate_expression(node, x: np.ndarray, y: np.ndarray, modulus: int) -> np.ndarray:
    """Evaluate a parsed tree elementwise mod `modulus`, reducing after every operation (no overflow)."""
    op = node[0]
    if op == "num":
        return np.full_like(x, node[1] % modulus)
    if op == "var":
        return (x if node[1] == "x" else y) % modulus
    if op == "neg":
        return (-evaluate_expression(node[1], x, y, modulus)) % modulus
    if op == "**":
        base, out = evaluate_expression(node[1], x, y, modulus), np.full_like(x, 1 % modulus)
        for _ in range(node[2]):
            out = (out * base) % modulus
        return out
    left = evaluate_expression(node[1], x, y, modulus)
    right = evaluate_expression(node[2], x, y, modulus)
    if op == "+":
        return (left + right) % modulus
    if op == "-":
        return (left - right) % modulus
    return (left * right) % modulus
