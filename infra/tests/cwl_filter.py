"""CloudWatch Logs JSON metric-filter patterns, the subset the stack's filters and the AWS
documentation's JSON examples use, evaluated against one log event (one line) as CloudWatch
Logs does for a metric filter (AWS CloudWatch Logs User Guide, "Filter and pattern syntax":
"Using metric filters to match terms and extract values from JSON log events", "Matching terms
in JSON log events", "Using compound expressions to match terms in JSON objects"; its earlier
edition's "JSON Metric Filter Examples", "JSON Special Considerations", "Numeric Comparisons").

Supported: `{ … }` around conditions `$.a.b[0] OP value` with OP one of = != < > <= >=, the
value a double-quoted string, an unquoted word or a number; `*` as a wildcard at the start or
end of a string value (inside a word it is a literal, as the guide says of `Ev*ent`);
`IS TRUE`, `IS FALSE`, `IS NULL`, `NOT EXISTS`; `&&` binding tighter than `||`; parentheses.

The rules as the guide gives them, and where it is silent what this module chooses:
* the event must be one JSON object: anything else (plain text, text before the `{`) matches
  no JSON pattern;
* a selector that points to an object or array, or to nothing, fails every comparison, `!=`
  included ("both {$.users = 1} and {$.users != 1} will fail to match … where users is an
  array"); only NOT EXISTS is true of a missing field;
* `=` and `!=` with a number compare numerically with a JSON number; with a string (quoted or
  a word) they compare with a JSON string; a JSON number against a string, a string against a
  number, or true/false/null against either fail both `=` and `!=` (the guide says nothing; a
  test that needed such a case should not rely on it);
* `<`, `>`, `<=`, `>=` take a number and compare with a JSON number only.

Anything else raises UnsupportedPattern, so a pattern this module cannot read fails the tests
instead of being misjudged: space-delimited `[…]` patterns, plain terms, `%regex%`,
`$.['quoted key']`, `IS NOT`, `EXISTS`, unquoted true/false/null as values (use IS TRUE…).
"""
import json
import math
import re

__all__ = ["UnsupportedPattern", "compile_pattern", "matches"]


class UnsupportedPattern(ValueError):
    """A pattern outside the supported subset, or not a valid JSON pattern at all."""


_TOKEN = re.compile(r"""
    (?P<space>\s+)
  | (?P<and>&&) | (?P<or>\|\|)
  | (?P<lparen>\() | (?P<rparen>\))
  | (?P<op>!=|<=|>=|=|<|>)
  | (?P<selector>\$(?:\.[A-Za-z0-9_-]+|\[\d+\])+)(?![.\[\w'"-])
  | (?P<string>"(?:[^"\\]|\\.)*")
  | (?P<word>[^\s()"&|=!<>]+)
""", re.X)

_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")
_MISSING = object()


def _tokens(body):
    position, out = 0, []
    while position < len(body):
        match = _TOKEN.match(body, position)
        if not match:
            raise UnsupportedPattern(f"cannot read {body[position:position + 20]!r} in a JSON pattern")
        kind = match.lastgroup
        if kind != "space":
            out.append((kind, match.group()))
        position = match.end()
    return out


class _Parser:
    def __init__(self, tokens):
        self.tokens, self.i = tokens, 0

    def peek(self):
        return self.tokens[self.i] if self.i < len(self.tokens) else (None, None)

    def take(self, kind=None, text=None):
        token = self.peek()
        if token[0] is None or (kind and token[0] != kind) or (text and token[1] != text):
            raise UnsupportedPattern(f"expected {text or kind}, found {token[1]!r}")
        self.i += 1
        return token

    def expression(self):
        terms = [self.conjunction()]
        while self.peek()[0] == "or":
            self.take("or")
            terms.append(self.conjunction())
        return terms[0] if len(terms) == 1 else ("or", terms)

    def conjunction(self):
        terms = [self.primary()]
        while self.peek()[0] == "and":
            self.take("and")
            terms.append(self.primary())
        return terms[0] if len(terms) == 1 else ("and", terms)

    def primary(self):
        if self.peek()[0] == "lparen":
            self.take("lparen")
            inner = self.expression()
            self.take("rparen")
            return inner
        kind, text = self.peek()
        if kind != "selector":
            raise UnsupportedPattern(f"expected a selector such as $.field or $.list[0], found {text!r}")
        self.take()
        path = [int(index) if index else name for name, index in re.findall(r"\.([A-Za-z0-9_-]+)|\[(\d+)\]", text)]
        kind, word = self.peek()
        if kind == "word" and word == "IS":
            self.take()
            _, what = self.take("word")
            if what not in ("TRUE", "FALSE", "NULL"):
                raise UnsupportedPattern(f"IS {what}: only IS TRUE, IS FALSE and IS NULL exist")
            return ("is", path, {"TRUE": True, "FALSE": False, "NULL": None}[what])
        if kind == "word" and word == "NOT":
            self.take()
            self.take("word", "EXISTS")
            return ("not_exists", path)
        if kind == "word" and word == "EXISTS":
            raise UnsupportedPattern("EXISTS is not supported by CloudWatch Logs (only NOT EXISTS)")
        _, op = self.take("op")
        kind, raw = self.take()
        if kind == "string":
            value = ("string", json.loads(raw))
        elif kind == "word" and _NUMBER.fullmatch(raw):
            value = ("number", float(raw))
        elif kind == "word" and raw in ("true", "false", "null"):
            raise UnsupportedPattern(f"{raw} as a value: write IS {raw.upper()}")
        elif kind == "word" and raw.startswith("%"):
            raise UnsupportedPattern(f"{raw}: regular expressions are not supported here")
        elif kind == "word":
            value = ("string", raw)
        else:
            raise UnsupportedPattern(f"expected a value after {op}, found {raw!r}")
        if op in ("<", ">", "<=", ">=") and value[0] != "number":
            raise UnsupportedPattern(f"{op} needs a number, not {raw}")
        return ("compare", path, op, value)


def compile_pattern(pattern):
    """The parsed pattern (raises UnsupportedPattern for anything outside the subset)."""
    text = pattern.strip()
    if not (text.startswith("{") and text.endswith("}")):
        raise UnsupportedPattern(f"not a JSON pattern (no {{ … }}): {pattern!r}")
    parser = _Parser(_tokens(text[1:-1]))
    tree = parser.expression()
    if parser.i != len(parser.tokens):
        raise UnsupportedPattern(f"unexpected {parser.tokens[parser.i][1]!r} in {pattern!r}")
    return tree


def _resolve(event, path):
    node = event
    for step in path:
        if isinstance(step, int):
            if not isinstance(node, list) or step >= len(node):
                return _MISSING
            node = node[step]
        else:
            if not isinstance(node, dict) or step not in node:
                return _MISSING
            node = node[step]
    return node


def _string_matches(wanted, actual):
    """`*` at either end is a wildcard; elsewhere a literal (the guide's `Ev*ent`)."""
    if wanted == "*":
        return True
    prefix, suffix = wanted.startswith("*"), wanted.endswith("*") and len(wanted) > 1
    core = wanted[1 if prefix else 0:len(wanted) - 1 if suffix else len(wanted)]
    if prefix and suffix:
        return core in actual
    if prefix:
        return actual.endswith(core)
    if suffix:
        return actual.startswith(core)
    return actual == core


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _evaluate(tree, event):
    kind = tree[0]
    if kind == "or":
        return any(_evaluate(t, event) for t in tree[1])
    if kind == "and":
        return all(_evaluate(t, event) for t in tree[1])
    if kind == "not_exists":
        return _resolve(event, tree[1]) is _MISSING
    if kind == "is":
        actual = _resolve(event, tree[1])
        # `is`: JSON true/false/null only (1 is not TRUE, "" is not NULL); missing is not NULL.
        return actual is not _MISSING and actual is tree[2]
    _, path, op, (value_kind, wanted) = tree
    actual = _resolve(event, path)
    if value_kind == "number":
        if not _is_number(actual):
            return False
        return {"=": actual == wanted, "!=": actual != wanted, "<": actual < wanted, ">": actual > wanted,
                "<=": actual <= wanted, ">=": actual >= wanted}[op]
    if not isinstance(actual, str):
        return False
    equal = _string_matches(wanted, actual)
    return equal if op == "=" else not equal


def matches(pattern, line):
    """Whether a metric filter with this FilterPattern counts the log event `line`."""
    tree = compile_pattern(pattern)
    try:
        event = json.loads(line)
    except ValueError:
        return False
    return isinstance(event, dict) and _evaluate(tree, event)
