"""A small, safe grammar for Argo-style `successCondition` / `failureCondition` (no eval).

    condition  := or_expr
    or_expr    := and_expr (("||" | "or") and_expr)*
    and_expr   := unary (("&&" | "and") unary)*
    unary      := ("!" | "not") unary | "(" or_expr ")" | comparison
    comparison := operand ("<" | "<=" | ">" | ">=" | "==" | "!=") operand
    operand    := number | "-" number | "result" ("[" integer "]")*

Any other word or symbol is rejected with a ValueError that names it.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeAlias

ResultValue: TypeAlias = "float | Sequence[ResultValue]"

_TOKEN = re.compile(r"\s*(?:(?P<number>\d+(?:\.\d*)?(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?)"
                    r"|(?P<op><=|>=|==|!=|&&|\|\||[<>!()\[\]-])|(?P<word>[A-Za-z_][A-Za-z_0-9]*))")
_COMPARE: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge, "==": operator.eq, "!=": operator.ne,
}
_WORDS = {"and": "&&", "or": "||", "not": "!", "result": "result"}


class ConditionError(ValueError):
    """A condition could not be evaluated against a measurement (e.g. `result[0]` of a number)."""


def tokenize(text: str) -> list[str]:
    """Split a condition into tokens; reject anything outside the grammar, naming it."""
    tokens: list[str] = []
    position = 0
    stripped = text.rstrip()
    while position < len(stripped):
        match = _TOKEN.match(stripped, position)
        if match is None:
            raise ValueError(f"unsupported character {stripped[position:].lstrip()[:1]!r} in condition {text!r}")
        word = match.group("word")
        if word is not None and word not in _WORDS:
            raise ValueError(f"unsupported name {word!r} in condition {text!r}: only 'result', numbers, "
                             "comparisons, &&, ||, ! and parentheses are allowed")
        tokens.append(_WORDS[word] if word is not None else match.group(match.lastgroup or "op"))
        position = match.end()
    if not tokens:
        raise ValueError("empty condition")
    return tokens


@dataclass(frozen=True)
class Operand:
    """A number, or `result` followed by zero or more indexes."""

    number: float | None = None
    path: tuple[int, ...] = ()

    def value(self, result: ResultValue) -> float:
        if self.number is not None:
            return self.number
        current: ResultValue = result
        for index in self.path:
            if isinstance(current, (int, float)) or index >= len(current):
                raise ConditionError(f"result{''.join(f'[{i}]' for i in self.path)} does not exist in {result!r}")
            current = current[index]
        if not isinstance(current, (int, float)):
            raise ConditionError(f"result{''.join(f'[{i}]' for i in self.path)} is not a number: {current!r}")
        return float(current)


@dataclass(frozen=True)
class Compare:
    left: Operand
    op: str
    right: Operand

    def evaluate(self, result: ResultValue) -> bool:
        left, right = self.left.value(result), self.right.value(result)
        if math.isnan(left) or math.isnan(right):
            return False
        return _COMPARE[self.op](left, right)


@dataclass(frozen=True)
class Not:
    item: Node

    def evaluate(self, result: ResultValue) -> bool:
        return not self.item.evaluate(result)


@dataclass(frozen=True)
class AllOf:
    items: tuple[Node, ...]

    def evaluate(self, result: ResultValue) -> bool:
        return all(item.evaluate(result) for item in self.items)


@dataclass(frozen=True)
class AnyOf:
    items: tuple[Node, ...]

    def evaluate(self, result: ResultValue) -> bool:
        return any(item.evaluate(result) for item in self.items)


Node: TypeAlias = "Compare | Not | AllOf | AnyOf"


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.at = 0

    def peek(self) -> str | None:
        return self.tokens[self.at] if self.at < len(self.tokens) else None

    def take(self, expected: str | None = None) -> str:
        token = self.peek()
        if token is None or (expected is not None and token != expected):
            wanted = f"{expected!r}" if expected else "more"
            raise ValueError(f"expected {wanted} but found {token or 'the end'!r} in condition {self.text!r}")
        self.at += 1
        return token

    def parse(self) -> Node:
        node = self.or_expr()
        if self.peek() is not None:
            raise ValueError(f"unexpected {self.peek()!r} in condition {self.text!r}")
        return node

    def or_expr(self) -> Node:
        items = [self.and_expr()]
        while self.peek() == "||":
            self.take()
            items.append(self.and_expr())
        return items[0] if len(items) == 1 else AnyOf(tuple(items))

    def and_expr(self) -> Node:
        items = [self.unary()]
        while self.peek() == "&&":
            self.take()
            items.append(self.unary())
        return items[0] if len(items) == 1 else AllOf(tuple(items))

    def unary(self) -> Node:
        if self.peek() == "!":
            self.take()
            return Not(self.unary())
        if self.peek() == "(":
            self.take()
            node = self.or_expr()
            self.take(")")
            return node
        left = self.operand()
        op = self.take()
        if op not in _COMPARE:
            raise ValueError(f"expected a comparison but found {op!r} in condition {self.text!r}")
        return Compare(left, op, self.operand())

    def operand(self) -> Operand:
        token = self.take()
        if token == "result":
            return Operand(path=self.indexes())
        sign = 1.0
        if token == "-":
            sign, token = -1.0, self.take()
        try:
            return Operand(number=sign * float(token))
        except ValueError:
            raise ValueError(f"expected a number or 'result' but found {token!r} in condition {self.text!r}") from None

    def indexes(self) -> tuple[int, ...]:
        path: list[int] = []
        while self.peek() == "[":
            self.take()
            token = self.take()
            if not token.isdigit():
                raise ValueError(f"index must be a non-negative integer, found {token!r} in condition {self.text!r}")
            path.append(int(token))
            self.take("]")
        return tuple(path)


def parse_condition(text: str) -> Node:
    """Parse a condition such as `result[0] >= 0.95` or `result <= 2 && result >= 1` into a tree."""
    return _Parser(text).parse()
