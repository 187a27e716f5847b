"""Tests for deploysim.alarms.composite: parsing and evaluating CloudWatch composite alarm rules."""

from __future__ import annotations

import dataclasses
import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deploysim.alarms import CompositeRule, RuleSyntaxError, parse_rule
from deploysim.alarms.composite import MAX_NESTING

STATES = ("OK", "ALARM", "INSUFFICIENT_DATA")


def _all_assignments(names: list[str], states: tuple[str, ...] = ("OK", "ALARM")):
    for combo in itertools.product(states, repeat=len(names)):
        yield dict(zip(names, combo, strict=True))


def test_or_of_two_quoted_alarms() -> None:
    """OR of quoted names (the Builders' Library example) is ALARM iff either is in ALARM."""
    rule = parse_rule(
        'ALARM("FrontEndApiService_High_Fault_Rate") OR ALARM("FrontEndApiService_High_P99_Latency")'
    )
    assert rule.alarm_names == frozenset(
        {"FrontEndApiService_High_Fault_Rate", "FrontEndApiService_High_P99_Latency"}
    )
    for states in _all_assignments(sorted(rule.alarm_names), STATES):
        expected = "ALARM" if "ALARM" in states.values() else "OK"
        assert rule.evaluate(states) == expected


def test_and_binds_tighter_than_or() -> None:
    """ALARM(a) OR ALARM(b) AND ALARM(c) means a OR (b AND c)."""
    rule = parse_rule("ALARM(a) OR ALARM(b) AND ALARM(c)")
    for s in _all_assignments(["a", "b", "c"]):
        a, b, c = (s[k] == "ALARM" for k in "abc")
        assert rule.evaluate(s) == ("ALARM" if a or (b and c) else "OK"), s
    # The distinguishing case: a in ALARM, c OK -> still ALARM (not (a OR b) AND c).
    assert rule.evaluate({"a": "ALARM", "b": "OK", "c": "OK"}) == "ALARM"


def test_parentheses_override_precedence() -> None:
    """(ALARM(a) OR ALARM(b)) AND ALARM(c) groups the OR first."""
    rule = parse_rule("(ALARM(a) OR ALARM(b)) AND ALARM(c)")
    assert rule.evaluate({"a": "ALARM", "b": "OK", "c": "OK"}) == "OK"
    assert rule.evaluate({"a": "ALARM", "b": "OK", "c": "ALARM"}) == "ALARM"


def test_not_binds_tighter_than_and() -> None:
    """NOT applies to the next operand only: NOT ALARM(a) AND ALARM(b) = (NOT a) AND b."""
    rule = parse_rule("NOT ALARM(a) AND ALARM(b)")
    for s in _all_assignments(["a", "b"]):
        a, b = (s[k] == "ALARM" for k in "ab")
        assert rule.evaluate(s) == ("ALARM" if (not a) and b else "OK"), s


def test_and_not_ok_with_bare_and_quoted_names() -> None:
    """ALARM(a) AND NOT OK("b"): a in ALARM and b in any state other than OK."""
    rule = parse_rule('ALARM(a) AND NOT OK("b")')
    assert rule.alarm_names == frozenset({"a", "b"})
    assert rule.evaluate({"a": "ALARM", "b": "INSUFFICIENT_DATA"}) == "ALARM"
    assert rule.evaluate({"a": "ALARM", "b": "ALARM"}) == "ALARM"
    assert rule.evaluate({"a": "ALARM", "b": "OK"}) == "OK"
    assert rule.evaluate({"a": "OK", "b": "ALARM"}) == "OK"


def test_double_not_cancels() -> None:
    """NOT NOT x is x."""
    rule = parse_rule("NOT NOT ALARM(a)")
    assert rule.evaluate({"a": "ALARM"}) == "ALARM"
    assert rule.evaluate({"a": "OK"}) == "OK"


@pytest.mark.parametrize("function", STATES)
def test_state_functions_match_only_their_state(function: str) -> None:
    """ALARM(x), OK(x) and INSUFFICIENT_DATA(x) are true exactly when x is in that state."""
    rule = parse_rule(f"{function}(x)")
    for state in STATES:
        assert rule.evaluate({"x": state}) == ("ALARM" if state == function else "OK")


def test_true_and_false_constants() -> None:
    """TRUE and FALSE are bare constants and reference no alarm."""
    assert parse_rule("TRUE").evaluate({}) == "ALARM"
    assert parse_rule("FALSE").evaluate({}) == "OK"
    assert parse_rule("FALSE OR NOT FALSE").evaluate({}) == "ALARM"
    rule = parse_rule("TRUE AND ALARM(a)")
    assert rule.alarm_names == frozenset({"a"})
    assert rule.evaluate({"a": "OK"}) == "OK"


def test_nested_parentheses() -> None:
    """Deeply nested groups parse and evaluate like the flat logic they spell."""
    rule = parse_rule(
        '((ALARM("a") AND (OK(b) OR ((INSUFFICIENT_DATA(c))))) OR NOT (NOT (ALARM(d))))'
    )
    for s in _all_assignments(["a", "b", "c", "d"], STATES):
        expected = (s["a"] == "ALARM" and (s["b"] == "OK" or s["c"] == "INSUFFICIENT_DATA")) or s[
            "d"
        ] == "ALARM"
        assert rule.evaluate(s) == ("ALARM" if expected else "OK"), s


def test_whitespace_is_optional_around_parentheses() -> None:
    """Tokens need no spaces around parentheses; newlines and tabs count as spaces."""
    rule = parse_rule('(ALARM(a)OR\tALARM( "b c" ))\nAND NOT(OK(d))')
    assert rule.alarm_names == frozenset({"a", "b c", "d"})
    assert rule.evaluate({"a": "ALARM", "b c": "OK", "d": "ALARM"}) == "ALARM"


def test_names_with_special_characters() -> None:
    """Bare names may contain ':' '/' '-' '.' (ARNs); quoted names may hold spaces,
    parentheses and words spelled like keywords."""
    arn = "arn:aws:cloudwatch:us-east-1:123456789012:alarm:api-5xx.rate/v2"
    rule = parse_rule(f'ALARM({arn}) OR ALARM("p99 (ms) AND more") OR OK(NOT)')
    assert rule.alarm_names == frozenset({arn, "p99 (ms) AND more", "NOT"})
    assert rule.evaluate({arn: "OK", "p99 (ms) AND more": "OK", "NOT": "ALARM"}) == "OK"
    assert rule.evaluate({arn: "OK", "p99 (ms) AND more": "ALARM", "NOT": "ALARM"}) == "ALARM"


def test_long_chains_do_not_recurse() -> None:
    """A chain of 2000 ORs parses and evaluates (AND/OR chains are flat, not nested)."""
    names = [f"alarm{i}" for i in range(2000)]
    rule = parse_rule(" OR ".join(f"ALARM({n})" for n in names))
    states = dict.fromkeys(names, "OK")
    assert rule.evaluate(states) == "OK"
    states[names[-1]] = "ALARM"
    assert rule.evaluate(states) == "ALARM"


def test_missing_alarm_state_raises_key_error_with_name() -> None:
    """evaluate() raises KeyError naming an alarm absent from states, even when the
    result would not depend on it (no short-circuit hiding)."""
    rule = parse_rule("TRUE OR ALARM(needed)")
    with pytest.raises(KeyError, match="needed"):
        rule.evaluate({"other": "OK"})


def test_invalid_alarm_state_raises_value_error() -> None:
    """A state that is not OK/ALARM/INSUFFICIENT_DATA is rejected."""
    with pytest.raises(ValueError, match="alarm 'a'"):
        parse_rule("ALARM(a)").evaluate({"a": "alarm"})


def test_rule_is_immutable_and_comparable() -> None:
    """CompositeRule is frozen; rules with the same text are equal and hashable."""
    rule = parse_rule("ALARM(a) AND OK(b)")
    with pytest.raises(dataclasses.FrozenInstanceError):
        rule.text = "x"  # type: ignore[misc]
    assert rule == parse_rule("ALARM(a) AND OK(b)")
    assert hash(rule) == hash(parse_rule("ALARM(a) AND OK(b)"))
    assert isinstance(rule, CompositeRule)


@pytest.mark.parametrize(
    "text, column, expected",
    [
        ("(ALARM(a) OR ALARM(b)", 22, "')'"),
        ('ALARM("FrontEndApi" AND OK(b)', 21, "')'"),
        ("ALARM(a) AND", 13, "ALARM(...)"),
        ("ALARM(a) OR OR ALARM(b)", 13, "ALARM(...)"),
        ("ALARM a", 7, "'(' after ALARM"),
        ("ALARM()", 7, "an alarm name"),
        ('ALARM("")', 7, "an alarm name"),
        ("ALARM(a))", 9, "AND, OR or end of rule"),
        ("ALARM(a) ALARM(b)", 10, "AND, OR or end of rule"),
        ("alarm(a)", 1, "ALARM(...)"),
        ("ALARM(a) and OK(b)", 10, "AND, OR or end of rule"),
        ("TRUE()", 5, "AND, OR or end of rule"),
        ("", 1, "ALARM(...)"),
        ("   ", 4, "ALARM(...)"),
        ("NOT", 4, "ALARM(...)"),
        ('OK("unterminated', 17, "closing '\"'"),
        ("()", 2, "ALARM(...)"),
    ],
)
def test_syntax_errors_report_column_and_expectation(text: str, column: int, expected: str) -> None:
    """Malformed rules raise RuleSyntaxError (a ValueError) saying what was expected where."""
    with pytest.raises(RuleSyntaxError) as info:
        parse_rule(text)
    err = info.value
    assert isinstance(err, ValueError)
    assert err.column == column
    assert f"at column {column}" in str(err)
    assert str(err).startswith(f"expected {expected}")


def test_missing_close_paren_message_format() -> None:
    """The message for a missing ')' reads "expected ')' at column N" (N 1-based)."""
    text = "(ALARM(a) OR ALARM(bc)"  # 22 characters; ')' is due at column 23
    with pytest.raises(RuleSyntaxError, match=r"^expected '\)' at column 23\b"):
        parse_rule(text)


def test_excessive_nesting_is_a_syntax_error() -> None:
    """Nesting beyond MAX_NESTING is reported as RuleSyntaxError, not RecursionError."""
    depth = MAX_NESTING + 1
    with pytest.raises(RuleSyntaxError, match="nesting"):
        parse_rule("(" * depth + "TRUE" + ")" * depth)
    with pytest.raises(RuleSyntaxError, match="nesting"):
        parse_rule("NOT " * depth + "TRUE")
    assert parse_rule("(" * MAX_NESTING + "TRUE" + ")" * MAX_NESTING).evaluate({}) == "ALARM"


def test_parse_rule_requires_str() -> None:
    """A non-string rule is a TypeError, not a syntax error."""
    with pytest.raises(TypeError):
        parse_rule(None)  # type: ignore[arg-type]


# Random expression trees rendered to text and evaluated directly in Python, to check
# the parser's precedence and grouping against an independent reading.
_leaf = st.one_of(
    st.tuples(st.just("state"), st.sampled_from(STATES), st.sampled_from(["a", "b", "c"])),
    st.tuples(st.just("const"), st.booleans()),
)
_tree = st.recursive(
    _leaf,
    lambda kids: st.one_of(
        st.tuples(st.just("not"), kids),
        st.tuples(st.sampled_from(["and", "or"]), kids, kids),
    ),
    max_leaves=12,
)


def _render(node: tuple) -> str:
    kind = node[0]
    if kind == "state":
        return f'{node[1]}("{node[2]}")'
    if kind == "const":
        return "TRUE" if node[1] else "FALSE"
    if kind == "not":
        return f"NOT ({_render(node[1])})"
    return f"({_render(node[1])}) {kind.upper()} ({_render(node[2])})"


def _truth(node: tuple, states: dict[str, str]) -> bool:
    kind = node[0]
    if kind == "state":
        return states[node[2]] == node[1]
    if kind == "const":
        return node[1]
    if kind == "not":
        return not _truth(node[1], states)
    left, right = _truth(node[1], states), _truth(node[2], states)
    return (left and right) if kind == "and" else (left or right)


@settings(max_examples=150, deadline=None)
@given(_tree, st.fixed_dictionaries({k: st.sampled_from(STATES) for k in "abc"}))
def test_fully_parenthesised_random_rules_match_python(node: tuple, states: dict[str, str]) -> None:
    """Any fully parenthesised rule evaluates like the same logic in Python."""
    rule = parse_rule(_render(node))
    assert rule.evaluate(states) == ("ALARM" if _truth(node, states) else "OK")


def test_evaluate_series_agrees_with_evaluate_at_every_period():
    """The vectorised rule gives, period by period, what evaluate() gives on that period's states."""
    import numpy as np

    rule = parse_rule('(ALARM("a") AND NOT OK("b")) OR (ALARM("c") AND TRUE) OR (OK("a") AND FALSE)')
    rng = np.random.default_rng(3)
    flags = {name: rng.random(64) < 0.4 for name in ("a", "b", "c")}
    series = rule.evaluate_series(flags)
    for k in range(64):
        states = {name: "ALARM" if flags[name][k] else "OK" for name in flags}
        assert series[k] == (rule.evaluate(states) == "ALARM")
