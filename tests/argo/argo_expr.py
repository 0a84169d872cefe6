"""Argo's expression tags (`{{=...}}`, expr-lang) and its substitution of a template's text, for tests.

What the templates use, read from argo-workflows v4 (util/template: simple_template.go, expression_template.go,
replace.go; workflow/common/util.go SubstituteParams; util/expr/env/env.go) and expr-lang (its lexer's
`unescape`); anything else raises `Unsupported`, so no test leans on a semantics this file does not have:

- Values: string literals in single or double quotes, with expr-lang's escapes (`\\\\`, `\\'`, `\\"`, `\\n`,
  `\\t`, `\\r`, `\\uXXXX`); integers; `true`, `false`, `nil`; names with `.member` and `['key']` access into
  the environment, which Argo builds from the flat `{"workflow.parameters.x": value}` map by splitting keys
  at dots (util/expand: where `a` and `a.b` are both keys, the shorter goes).
- Operators: `+` (strings or integers), `-` (integers), `==`, `!=`, `&&`, `||`, `!`, parentheses.
- Functions: `toJson` (Go's json.Marshal: `<`, `>`, `&`, U+2028, U+2029 escaped, map keys sorted), `asInt`
  (expr-lang's `int`: an integer or a string of one, else an error), `sprig.replace(old, new, text)`.
- A tag's result is written as Go's `fmt.Sprintf("%v")` of it; a tag that fails to evaluate is left as it
  is (both of Argo's passes allow unresolved tags), and so is a simple tag without a value.

`substitute_json` substitutes a template as Argo's SubstituteParams does: the template marshalled to JSON,
every tag replaced in that text with its value JSON-escaped (strconv.Quote without its quotes; an expression's
result through json.Marshal, likewise), then unmarshalled; first with the globals, then, in the text the first
pass made, with the inputs. A value that holds a tag is therefore evaluated again by the second pass.
"""

from __future__ import annotations

import json
import re
from typing import Any

TAG = re.compile(r"\{\{(.*?)\}\}", re.S)
"""A tag as Argo's template parser finds it: from `{{` to the next `}}`."""


class Unsupported(Exception):
    """An expression this evaluator does not implement."""


class ExprError(Exception):
    """The expression fails to evaluate in Argo too (a type error, an unknown name, a bad integer)."""


_TOKEN = re.compile(
    r"\s*(?:(?P<num>\d+)(?![\w.])|(?P<str>'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\")"
    r"|(?P<op>==|!=|&&|\|\||[-+!()\[\],.?:])|(?P<name>[A-Za-z_]\w*))",
    re.S,
)
_ESCAPES = {"\\": "\\", "'": "'", '"': '"', "n": "\n", "t": "\t", "r": "\r", "a": "\a", "b": "\b", "f": "\f"}


def _unescape(body: str) -> str:
    out, index = [], 0
    while index < len(body):
        char = body[index]
        if char != "\\":
            out.append(char)
            index += 1
            continue
        code = body[index + 1]
        if code == "u":
            out.append(chr(int(body[index + 2 : index + 6], 16)))
            index += 6
        elif code in _ESCAPES:
            out.append(_ESCAPES[code])
            index += 2
        else:
            raise Unsupported(f"string escape \\{code}")
    return "".join(out)


def _tokens(text: str) -> list[tuple[str, Any]]:
    tokens, at = [], 0
    while at < len(text.rstrip()):
        match = _TOKEN.match(text, at)
        if match is None or match.end() == at:
            raise Unsupported(f"cannot read {text[at:]!r} in expression {text!r}")
        at = match.end()
        if match["num"] is not None:
            tokens.append(("val", int(match["num"])))
        elif match["str"] is not None:
            tokens.append(("val", _unescape(match["str"][1:-1])))
        elif match["op"] is not None:
            if match["op"] in ("?", ":"):
                raise Unsupported(f"ternaries are not implemented: {text!r}")
            tokens.append(("op", match["op"]))
        else:
            word = match["name"]
            constants = {"true": True, "false": False, "nil": None}
            tokens.append(("val", constants[word]) if word in constants else ("name", word))
    return tokens


def go_json(value: Any) -> str:
    """Go's json.Marshal of a value (compact; HTML characters and U+2028/9 escaped; map keys sorted)."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
    for char, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026")):
        text = text.replace(char, escaped)
    return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def _as_int(value: Any) -> int:
    if isinstance(value, bool):
        raise ExprError(f"cannot convert {value!r} to int")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(r"[+-]?\d+", value):
        return int(value)
    raise ExprError(f"cannot convert {value!r} to int")


def _replace(old: Any, new: Any, text: Any) -> str:
    if not all(isinstance(v, str) for v in (old, new, text)):
        raise ExprError("sprig.replace takes three strings")
    return text.replace(old, new)


FUNCTIONS = {"toJson": go_json, "asInt": _as_int, "sprig.replace": _replace}


def expand(flat: dict[str, Any]) -> dict[str, Any]:
    """Argo's expression environment from a flat map: keys split at dots; `a` goes where `a.b` is a key."""
    keys = sorted(flat)
    nested: dict[str, Any] = {}
    for key in keys:
        if any(other.startswith(key + ".") for other in keys):
            continue
        *path, last = key.split(".")
        here = nested
        for part in path:
            here = here.setdefault(part, {})
        here[last] = flat[key]
    return nested


class _Parser:
    def __init__(self, text: str, env: dict[str, Any]) -> None:
        self.text, self.tokens, self.pos, self.env = text, _tokens(text), 0, env

    def parse(self) -> Any:
        value = self.or_()
        if self.pos != len(self.tokens):
            raise Unsupported(f"unexpected {self.tokens[self.pos][1]!r} in {self.text!r}")
        return value

    def _op(self, *ops: str) -> str | None:
        if (
            self.pos < len(self.tokens)
            and self.tokens[self.pos][0] == "op"
            and self.tokens[self.pos][1] in ops
        ):
            self.pos += 1
            return self.tokens[self.pos - 1][1]
        return None

    def _expect(self, op: str) -> None:
        if not self._op(op):
            raise Unsupported(f"expected {op!r} in {self.text!r}")

    def or_(self) -> Any:
        left = self.and_()
        while self._op("||"):
            right = self.and_()
            left = self._bool(left) or self._bool(right)
        return left

    def and_(self) -> Any:
        left = self.equality()
        while self._op("&&"):
            right = self.equality()
            left = self._bool(left) and self._bool(right)
        return left

    def equality(self) -> Any:
        left = self.sum()
        while op := self._op("==", "!="):
            right = self.sum()
            left = (left == right and type(left) is type(right)) == (op == "==")
        return left

    def sum(self) -> Any:
        left = self.unary()
        while op := self._op("+", "-"):
            right = self.unary()
            if op == "+" and isinstance(left, str) and isinstance(right, str):
                left = left + right
            elif all(isinstance(v, int) and not isinstance(v, bool) for v in (left, right)):
                left = left + right if op == "+" else left - right
            else:
                raise ExprError(f"invalid operation: {left!r} {op} {right!r}")
        return left

    def unary(self) -> Any:
        if self._op("!"):
            return not self._bool(self.unary())
        if self._op("-"):
            return -_as_int(self.unary())
        return self.postfix()

    def postfix(self) -> Any:
        if self._op("("):
            value = self.or_()
            self._expect(")")
            return value
        kind, value = self.tokens[self.pos] if self.pos < len(self.tokens) else ("end", None)
        self.pos += 1
        if kind == "val":
            return value
        if kind != "name":
            raise Unsupported(f"expected a value, got {value!r} in {self.text!r}")
        path = [value]
        while True:
            if self._op("."):
                kind, member = self.tokens[self.pos]
                if kind != "name":
                    raise Unsupported(f"expected a name after '.' in {self.text!r}")
                self.pos += 1
                path.append(member)
            elif self._op("["):
                key = self.or_()
                self._expect("]")
                path.append(key)
            else:
                break
        if self._op("("):
            name = ".".join(str(part) for part in path)
            if name not in FUNCTIONS:
                raise Unsupported(f"function {name}() is not implemented here ({self.text!r})")
            args = [] if self._op(")") else [self.or_()]
            while args and self._op(","):
                args.append(self.or_())
            if args:
                self._expect(")")
            return FUNCTIONS[name](*args)
        here: Any = self.env
        for part in path:
            if not isinstance(here, dict) or part not in here:
                raise ExprError(f"unknown name {'.'.join(map(str, path))} in {self.text!r}")
            here = here[part]
        return here

    def _bool(self, value: Any) -> bool:
        if not isinstance(value, bool):
            raise ExprError(f"{value!r} is not a boolean in {self.text!r}")
        return value


def evaluate(expression: str, scope: dict[str, Any]) -> Any:
    """The value of an expr-lang expression over Argo's flat scope (`{"inputs.parameters.x": "1"}`)."""
    return _Parser(expression, expand(scope)).parse()


def go_text(value: Any) -> str:
    """Go's `fmt.Sprintf("%v", value)` of an expression's result."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        raise ExprError("the expression gave nil")
    if isinstance(value, (str, int)):
        return str(value)
    raise Unsupported(f"a result of type {type(value).__name__}")


def replace_tags(text: str, scope: dict[str, str], *, escape: bool) -> str:
    """Every tag of `text` that resolves, replaced by its value (JSON-escaped when `escape`: the text is a
    template's JSON); one that does not resolve is left as it is, as Argo allows."""

    def one(match: re.Match) -> str:
        inner = match[1]
        if inner.startswith("="):
            source = json.loads(f'"{inner[1:]}"') if escape else inner[1:]  # Argo unmarshals the JSON text
            try:
                value = go_text(evaluate(source, scope))
            except ExprError:
                return match[0]
        elif inner.strip() in scope:
            value = scope[inner.strip()]
        else:
            return match[0]
        return json.dumps(value, ensure_ascii=False)[1:-1] if escape else value

    return TAG.sub(one, text)


def substitute_json(template: Any, globals_: dict[str, str], inputs: dict[str, str]) -> Any:
    """A template substituted as Argo's SubstituteParams does it: globals, then inputs, each pass over the
    template's JSON text (see the module docstring)."""
    text = replace_tags(json.dumps(template, ensure_ascii=False), globals_, escape=True)
    return json.loads(replace_tags(text, inputs, escape=True))


MANIFEST_EXPRESSION = re.compile(r"\{\{\s*=\s*(.+?)\s*\}\}")


def validation_text(manifest: str) -> str:
    """A manifest as Argo's validation parses it: each expression tag replaced by a placeholder
    (validate.SubstituteResourceManifestExpressions)."""
    found: dict[str, str] = {}
    for match in MANIFEST_EXPRESSION.finditer(manifest):
        found.setdefault(match[1], f"placeholder-{len(found)}")
    return MANIFEST_EXPRESSION.sub(lambda match: found[match[1]], manifest)
