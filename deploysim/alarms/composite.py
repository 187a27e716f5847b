"""Composite alarm rules in CloudWatch's AlarmRule syntax: parse once, evaluate often.

Grammar (keywords case-sensitive, as in CloudWatch)::

    rule     := or_expr END
    or_expr  := and_expr ("OR" and_expr)*
    and_expr := not_expr ("AND" not_expr)*
    not_expr := "NOT" not_expr | primary
    primary  := "(" or_expr ")" | "TRUE" | "FALSE"
              | ("ALARM" | "OK" | "INSUFFICIENT_DATA") "(" name ")"
    name     := '"' any characters except '"' '"' | bare name

A bare name is a run of characters other than whitespace, parentheses and double
quotes (so alarm ARNs work unquoted); names with spaces or parentheses must be quoted.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from deploysim.alarms.metric_alarm import ALARM_STATES

__all__ = [
    "And",
    "CompositeRule",
    "Constant",
    "Expression",
    "Not",
    "Or",
    "STATE_CODES",
    "RuleSyntaxError",
    "StateIs",
    "parse_rule",
]

# Parentheses and NOT are parsed recursively; this bound turns a pathological rule
# into a clean RuleSyntaxError instead of a RecursionError.
MAX_NESTING = 100

_STATE_FUNCTIONS = ("ALARM", "OK", "INSUFFICIENT_DATA")
_PRIMARY_EXPECTED = "ALARM(...), OK(...), INSUFFICIENT_DATA(...), TRUE, FALSE, NOT or '('"


class RuleSyntaxError(ValueError):
    """A composite alarm rule that does not parse; says where and what was expected."""

    def __init__(self, expected: str, column: int, found: str, rule: str) -> None:
        self.expected = expected
        self.column = column  # 1-based
        self.found = found
        self.rule = rule
        super().__init__(f"expected {expected} at column {column}, found {found}")


# --- expression tree -------------------------------------------------------------


@dataclass(frozen=True)
class StateIs:
    """``ALARM(name)``, ``OK(name)`` or ``INSUFFICIENT_DATA(name)``."""

    state: str
    alarm: str

    def holds(self, states: Mapping[str, str]) -> bool:
        return states[self.alarm] == self.state


@dataclass(frozen=True)
class Constant:
    """``TRUE`` or ``FALSE``."""

    value: bool

    def holds(self, states: Mapping[str, str]) -> bool:
        return self.value


@dataclass(frozen=True)
class Not:
    """``NOT operand``."""

    operand: Expression

    def holds(self, states: Mapping[str, str]) -> bool:
        return not self.operand.holds(states)


# AND/OR chains are kept flat (n-ary) rather than as left-nested binary nodes: the
# operators are associative, and a long "a OR b OR c ..." chain then costs no recursion.
@dataclass(frozen=True)
class And:
    """``a AND b AND ...``: true when every operand is."""

    operands: tuple[Expression, ...]

    def holds(self, states: Mapping[str, str]) -> bool:
        return all(op.holds(states) for op in self.operands)


@dataclass(frozen=True)
class Or:
    """``a OR b OR ...``: true when any operand is."""

    operands: tuple[Expression, ...]

    def holds(self, states: Mapping[str, str]) -> bool:
        return any(op.holds(states) for op in self.operands)


Expression = StateIs | Constant | Not | And | Or


@dataclass(frozen=True)
class CompositeRule:
    """A parsed composite alarm rule.

    ``evaluate`` returns ``"ALARM"`` when the rule is true for the given states of
    the referenced alarms, otherwise ``"OK"``.
    """

    text: str
    expression: Expression = field(repr=False)
    alarm_names: frozenset[str] = field(init=False, repr=False)
    # Order of first appearance, so a missing state is reported deterministically.
    _names_in_order: tuple[str, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        names = _referenced_names(self.expression)
        # Frozen dataclass: derived fields must be set through object.__setattr__.
        object.__setattr__(self, "_names_in_order", names)
        object.__setattr__(self, "alarm_names", frozenset(names))

    def evaluate(self, states: Mapping[str, str]) -> Literal["ALARM", "OK"]:
        # Check every referenced alarm up front: short-circuiting must not hide a
        # missing or invalid state that would matter under other inputs.
        for name in self._names_in_order:
            if name not in states:
                raise KeyError(name)
            if states[name] not in ALARM_STATES:
                raise ValueError(
                    f"state of alarm {name!r} must be one of {', '.join(ALARM_STATES)}; "
                    f"got {states[name]!r}"
                )
        return "ALARM" if self.expression.holds(states) else "OK"

    def evaluate_series(self, states: Mapping[str, np.ndarray]) -> np.ndarray:
        """The rule over time: ``states[name]`` is, per period, the state of every referenced alarm,
        either as state codes (``STATE_CODES``: 0 OK, 1 ALARM, 2 INSUFFICIENT_DATA) or as a bool
        array (True = ALARM, False = OK); returns True where the composite is in ALARM.

        ``OK(x)`` and ``INSUFFICIENT_DATA(x)`` hold only in their own state, so ``NOT ALARM(x)``
        and ``OK(x)`` differ while x has no data, as in CloudWatch.
        """
        for name in self._names_in_order:
            if name not in states:
                raise KeyError(name)
        codes = {name: _as_codes(states[name]) for name in self._names_in_order}
        length = codes[self._names_in_order[0]].shape if self._names_in_order else ()
        return np.broadcast_to(_series(self.expression, codes), length).copy()


STATE_CODES: dict[str, int] = {"OK": 0, "ALARM": 1, "INSUFFICIENT_DATA": 2}
"""The integer code of each alarm state in state series (int8 arrays)."""


def _as_codes(values: np.ndarray) -> np.ndarray:
    arr = np.asarray(values)
    if arr.dtype == np.bool_:
        return arr.astype(np.int8)  # True = ALARM (1), False = OK (0)
    return arr.astype(np.int8, copy=False)


def _series(node: Expression, codes: Mapping[str, np.ndarray]):
    if isinstance(node, StateIs):
        return codes[node.alarm] == STATE_CODES[node.state]
    if isinstance(node, Constant):
        return np.bool_(node.value)
    if isinstance(node, Not):
        return ~np.asarray(_series(node.operand, codes), dtype=bool)
    combine = np.logical_and if isinstance(node, And) else np.logical_or
    result = _series(node.operands[0], codes)
    for op in node.operands[1:]:
        result = combine(result, _series(op, codes))
    return result


def _referenced_names(expression: Expression) -> tuple[str, ...]:
    """Alarm names in order of first appearance (left to right)."""
    seen: dict[str, None] = {}
    stack: list[Expression] = [expression]
    while stack:
        node = stack.pop()
        if isinstance(node, StateIs):
            seen.setdefault(node.alarm, None)
        elif isinstance(node, Not):
            stack.append(node.operand)
        elif isinstance(node, (And, Or)):
            stack.extend(reversed(node.operands))
    return tuple(seen)


# --- tokenizer -------------------------------------------------------------------

_TokenKind = Literal["(", ")", "word", "string", "end"]


@dataclass(frozen=True)
class _Token:
    kind: _TokenKind
    value: str
    column: int  # 1-based

    def describe(self) -> str:
        if self.kind == "end":
            return "end of rule"
        if self.kind == "string":
            return f'"{self.value}"'
        return repr(self.value)


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    i = 0
    length = len(text)
    while i < length:
        ch = text[i]
        if ch.isspace():
            i += 1
        elif ch in "()":
            tokens.append(_Token(ch, ch, i + 1))  # type: ignore[arg-type]
            i += 1
        elif ch == '"':
            close = text.find('"', i + 1)
            if close < 0:
                raise RuleSyntaxError(
                    "closing '\"'", length + 1, f"end of rule (quote opened at column {i + 1})", text
                )
            tokens.append(_Token("string", text[i + 1 : close], i + 1))
            i = close + 1
        else:
            start = i
            while i < length and not text[i].isspace() and text[i] not in '()"':
                i += 1
            tokens.append(_Token("word", text[start:i], start + 1))
    tokens.append(_Token("end", "", length + 1))
    return tokens


# --- parser ----------------------------------------------------------------------


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokenize(text)
        self.pos = 0
        self.depth = 0

    def peek(self) -> _Token:
        return self.tokens[self.pos]

    def advance(self) -> _Token:
        token = self.tokens[self.pos]
        if token.kind != "end":
            self.pos += 1
        return token

    def is_word(self, value: str) -> bool:
        token = self.peek()
        return token.kind == "word" and token.value == value

    def fail(self, expected: str) -> RuleSyntaxError:
        token = self.peek()
        return RuleSyntaxError(expected, token.column, token.describe(), self.text)

    def expect(self, kind: _TokenKind, expected: str) -> _Token:
        if self.peek().kind != kind:
            raise self.fail(expected)
        return self.advance()

    def enter(self) -> None:
        self.depth += 1
        if self.depth > MAX_NESTING:
            raise self.fail(f"at most {MAX_NESTING} levels of nesting")

    def parse(self) -> Expression:
        expr = self.or_expr()
        if self.peek().kind != "end":
            raise self.fail("AND, OR or end of rule")
        return expr

    def or_expr(self) -> Expression:
        operands = [self.and_expr()]
        while self.is_word("OR"):
            self.advance()
            operands.append(self.and_expr())
        return operands[0] if len(operands) == 1 else Or(tuple(operands))

    def and_expr(self) -> Expression:
        operands = [self.not_expr()]
        while self.is_word("AND"):
            self.advance()
            operands.append(self.not_expr())
        return operands[0] if len(operands) == 1 else And(tuple(operands))

    def not_expr(self) -> Expression:
        if self.is_word("NOT"):
            self.advance()
            self.enter()
            operand = self.not_expr()
            self.depth -= 1
            return Not(operand)
        return self.primary()

    def primary(self) -> Expression:
        token = self.peek()
        if token.kind == "(":
            self.advance()
            self.enter()
            expr = self.or_expr()
            self.expect(")", "')'")
            self.depth -= 1
            return expr
        if token.kind == "word":
            if token.value == "TRUE":
                self.advance()
                return Constant(True)
            if token.value == "FALSE":
                self.advance()
                return Constant(False)
            if token.value in _STATE_FUNCTIONS:
                self.advance()
                self.expect("(", f"'(' after {token.value}")
                name = self.alarm_name()
                self.expect(")", "')'")
                return StateIs(token.value, name)
        raise self.fail(_PRIMARY_EXPECTED)

    def alarm_name(self) -> str:
        token = self.peek()
        # Inside a state function any word is a name, even one spelled like a keyword.
        if token.kind not in ("word", "string") or token.value == "":
            raise self.fail("an alarm name")
        self.advance()
        return token.value


def parse_rule(text: str) -> CompositeRule:
    """Parse a CloudWatch composite alarm rule.

    Precedence: NOT binds tightest, then AND, then OR; parentheses group.
    Raises :class:`RuleSyntaxError` (a ``ValueError``) with the 1-based column.
    """
    if not isinstance(text, str):
        raise TypeError(f"rule must be a str; got {type(text).__name__}")
    parser = _Parser(text)
    return CompositeRule(text=text, expression=parser.parse())
