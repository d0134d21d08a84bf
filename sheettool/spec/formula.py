"""The formula language of a template: Excel-like text → one expression tree → Excel and Python.

A template writes its formulas (formulas.json) and rule conditions (rules.json) as
text in a small Excel-like language::

    IF(ALLBLANK(staff_fte, overtime_hours), "",
       ROUND((staff_fte * rates.salary_per_fte + overtime_hours * rates.overtime_per_hour) / 1000, 0))

``parse`` turns the text into a tree whose names are unresolved; ``Expr.bind`` resolves
each name to a field path, a rate or a table (the template knows how); the bound tree
then gives both the Excel formula written into the workbook (``excel``) and the exact
decimal computation used to check a returned one (``evaluate``), so the two cannot
disagree. ``guard_noise`` adds what keeps the binary arithmetic of a spreadsheet on the
decimal result: authors never write it.

Operators: ``+ - * /`` (also ``× ÷ −``), ``&``, comparisons ``= <> < <= > >=``, unary
minus, parentheses. Functions: IF, IFERROR, AND, OR, NOT, ROUND, ROUNDUP, ROUNDDOWN, SUM,
MIN, MAX, ABS, LEN, ALLBLANK (every argument blank), ISBLANK, LOOKUP(key, table).
``items[chosen].member`` is the sum of ``member`` over the repeat items the multiple choice
``chosen`` names (in a year column: that year's entry of each item).
A blank cell is 0 in arithmetic and equals ``""``; a formula giving ``""`` shows nothing.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from decimal import ROUND_CEILING, ROUND_DOWN, ROUND_FLOOR, ROUND_UP, Decimal, InvalidOperation
from typing import Any

from ..rounding import excel_round, to_decimal


class FormulaSyntaxError(ValueError):
    """The text is not a formula of the language; the message is Japanese."""


class FormulaError(str):
    """A spreadsheet error value computed in Python (#DIV/0!, #VALUE!)."""


DIV0, VALUE = FormulaError("#DIV/0!"), FormulaError("#VALUE!")
Value = Decimal | str | bool | None


# --------------------------------------------------------------------------- the tree


class Expr:
    """A node of the expression tree."""

    prec = 9  # binding strength when printed as Excel (higher binds tighter)

    def children(self) -> tuple[Expr, ...]:
        return ()

    def rebuild(self, children: tuple[Expr, ...]) -> Expr:
        return self

    def excel(self, ref: Callable[[Expr], str]) -> str:
        raise NotImplementedError

    def evaluate(self, env: Env) -> Value:
        raise NotImplementedError

    def walk(self) -> Iterator[Expr]:
        yield self
        for child in self.children():
            yield from child.walk()

    def map(self, fn: Callable[[Expr], Expr | None]) -> Expr:
        """The tree with every node for which ``fn`` gives a replacement replaced (top-down)."""
        new = fn(self)
        if new is not None:
            return new
        kids = self.children()
        if not kids:
            return self
        mapped = tuple(k.map(fn) for k in kids)
        return self if mapped == kids else self.rebuild(mapped)

    def refs(self) -> list[str]:
        """Every field or rate path the expression reads, in order of appearance, once each."""
        return list(dict.fromkeys(n.path for n in self.walk() if isinstance(n, Ref)))


class Env:
    """Values for evaluation: ``value(path)`` of a bound reference, ``table(name)`` of a lookup."""

    def __init__(self, values: Mapping[str, Any] | Callable[[str], Any],
                 tables: Mapping[str, Mapping[str, str]] | None = None) -> None:
        self._get = values.get if isinstance(values, Mapping) else values
        self._tables = tables or {}

    def value(self, path: str) -> Any:
        return self._get(path)

    def table(self, name: str) -> Mapping[str, str]:
        return self._tables[name]


@dataclass(frozen=True)
class Num(Expr):
    text: str

    def excel(self, ref: Callable[[Expr], str]) -> str:
        return self.text

    def evaluate(self, env: Env) -> Value:
        return Decimal(self.text)


@dataclass(frozen=True)
class Str(Expr):
    value: str

    def excel(self, ref: Callable[[Expr], str]) -> str:
        return '"' + self.value.replace('"', '""') + '"'

    def evaluate(self, env: Env) -> Value:
        return self.value or None  # "" is a blank result


@dataclass(frozen=True)
class Bool(Expr):
    value: bool

    def excel(self, ref: Callable[[Expr], str]) -> str:
        return "TRUE" if self.value else "FALSE"

    def evaluate(self, env: Env) -> Value:
        return self.value


@dataclass(frozen=True)
class Name(Expr):
    """A name as written, before ``bind`` resolves it."""

    text: str

    def excel(self, ref: Callable[[Expr], str]) -> str:
        raise FormulaSyntaxError(f"名前「{self.text}」が解決されていません")

    def evaluate(self, env: Env) -> Value:
        raise FormulaSyntaxError(f"名前「{self.text}」が解決されていません")


@dataclass(frozen=True)
class Ref(Expr):
    """A field or rate: a cell in Excel, a value in Python. ``decimals``: at most this many (None: unknown)."""

    path: str
    decimals: int | None = None

    def excel(self, ref: Callable[[Expr], str]) -> str:
        return ref(self)

    def evaluate(self, env: Env) -> Value:
        value = env.value(self.path)
        if value is None or value == "":
            return None
        if isinstance(value, FormulaError | bool | Decimal | str):
            return value
        return to_decimal(value)


@dataclass(frozen=True)
class Table(Expr):
    """A lookup table held in the workbook (defined name ``tbl_<name>``)."""

    name: str

    def excel(self, ref: Callable[[Expr], str]) -> str:
        return ref(self)

    def evaluate(self, env: Env) -> Value:
        raise FormulaSyntaxError(f"表「{self.name}」は LOOKUP の中でだけ使えます")


@dataclass(frozen=True)
class Chosen(Expr):
    """One repeat item's member, counted only when the item is chosen: ``IF(flag, value, 0)``."""

    flag: Expr
    value: Expr

    prec = 9

    def children(self) -> tuple[Expr, ...]:
        return (self.flag, self.value)

    def rebuild(self, children: tuple[Expr, ...]) -> Expr:
        return Chosen(*children)

    def excel(self, ref: Callable[[Expr], str]) -> str:
        return f"IF({self.flag.excel(ref)},{self.value.excel(ref)},0)"

    def evaluate(self, env: Env) -> Value:
        return self.value.evaluate(env) if _truthy(self.flag.evaluate(env)) else Decimal(0)


@dataclass(frozen=True)
class Ticked(Expr):
    """A check box is ticked: ``cell="■"`` in Excel, True in the record."""

    box: Ref
    mark: str

    def children(self) -> tuple[Expr, ...]:
        return (self.box,)

    def rebuild(self, children: tuple[Expr, ...]) -> Expr:
        return Ticked(children[0], self.mark)  # type: ignore[arg-type]

    def excel(self, ref: Callable[[Expr], str]) -> str:
        return f'{self.box.excel(ref)}="{self.mark}"'

    def evaluate(self, env: Env) -> Value:
        value = env.value(self.box.path)
        return value is True or value == self.mark


@dataclass(frozen=True)
class Member(Expr):
    """Whether ``value`` is among the choices of a multiple choice held in one cell (joined text).

    Excel: ``ISNUMBER(SEARCH("label",cell))``; Python: the value is in the chosen list.
    """

    choice: Ref
    value: Any
    label: str

    def children(self) -> tuple[Expr, ...]:
        return (self.choice,)

    def rebuild(self, children: tuple[Expr, ...]) -> Expr:
        return Member(children[0], self.value, self.label)  # type: ignore[arg-type]

    def excel(self, ref: Callable[[Expr], str]) -> str:
        label = self.label.replace('"', '""')
        return f'ISNUMBER(SEARCH("{label}",{self.choice.excel(ref)}))'

    def evaluate(self, env: Env) -> Value:
        chosen = env.value(self.choice.path)
        return isinstance(chosen, list | tuple) and self.value in chosen


@dataclass(frozen=True)
class Select(Expr):
    """The sum of one member over the repeat items a multiple choice names: ``items[chosen].member``.

    Excel: ``IF(flag1,v1,0)+IF(flag2,v2,0)+…`` (a blank member counts 0).
    """

    terms: tuple[Chosen, ...]

    prec = 3

    def children(self) -> tuple[Expr, ...]:
        return self.terms

    def rebuild(self, children: tuple[Expr, ...]) -> Expr:
        return Select(children)  # type: ignore[arg-type]

    def excel(self, ref: Callable[[Expr], str]) -> str:
        return "+".join(t.excel(ref) for t in self.terms) if self.terms else "0"

    def evaluate(self, env: Env) -> Value:
        total = Decimal(0)
        for term in self.terms:
            value = _number(term.evaluate(env))
            if isinstance(value, FormulaError):
                return value
            total += value
        return total


@dataclass(frozen=True)
class Unary(Expr):
    op: str
    operand: Expr

    prec = 7

    def children(self) -> tuple[Expr, ...]:
        return (self.operand,)

    def rebuild(self, children: tuple[Expr, ...]) -> Expr:
        return Unary(self.op, children[0])

    def excel(self, ref: Callable[[Expr], str]) -> str:
        return self.op + _wrap(self.operand, self.prec, ref)

    def evaluate(self, env: Env) -> Value:
        value = _number(self.operand.evaluate(env))
        if isinstance(value, FormulaError):
            return value
        return -value if self.op == "-" else value


_PREC = {"=": 1, "<>": 1, "<": 1, "<=": 1, ">": 1, ">=": 1, "&": 2, "+": 3, "-": 3, "*": 4, "/": 4}


@dataclass(frozen=True)
class Bin(Expr):
    op: str
    left: Expr
    right: Expr

    @property
    def prec(self) -> int:  # type: ignore[override]
        return _PREC[self.op]

    def children(self) -> tuple[Expr, ...]:
        return (self.left, self.right)

    def rebuild(self, children: tuple[Expr, ...]) -> Expr:
        return Bin(self.op, *children)

    def excel(self, ref: Callable[[Expr], str]) -> str:
        left = _wrap(self.left, self.prec, ref)
        right_prec = self.prec + (1 if self.op in ("-", "/") or self.prec == 1 else 0)
        right = _wrap(self.right, right_prec, ref)
        return f"{left}{self.op}{right}"

    def evaluate(self, env: Env) -> Value:
        a, b = self.left.evaluate(env), self.right.evaluate(env)
        op = self.op
        if op == "&":
            return _text(a) + _text(b) or None
        if _PREC[op] == 1:
            return _compare(op, a, b)
        x, y = _number(a), _number(b)
        if isinstance(x, FormulaError):
            return x
        if isinstance(y, FormulaError):
            return y
        if op == "+":
            return x + y
        if op == "-":
            return x - y
        if op == "*":
            return x * y
        if y == 0:
            return DIV0
        return x / y


@dataclass(frozen=True)
class Call(Expr):
    fn: str
    args: tuple[Expr, ...]

    def children(self) -> tuple[Expr, ...]:
        return self.args

    def rebuild(self, children: tuple[Expr, ...]) -> Expr:
        return Call(self.fn, children)

    def excel(self, ref: Callable[[Expr], str]) -> str:
        fn, args = self.fn, self.args
        if fn == "ALLBLANK":
            tests = ",".join(f'{_wrap(a, 2, ref)}=""' for a in args)
            return f"AND({tests})" if len(args) > 1 else tests
        if fn == "ISBLANK":
            return f'{_wrap(args[0], 2, ref)}=""'
        if fn == "LOOKUP":
            k = args[0].excel(ref)
            return f'IF({k}="","",IFERROR(VLOOKUP({k},{args[1].excel(ref)},2,FALSE),""))'
        return f"{fn}({','.join(a.excel(ref) for a in args)})"

    def evaluate(self, env: Env) -> Value:
        return _FUNCTIONS[self.fn](self.args, env)


def _wrap(node: Expr, prec: int, ref: Callable[[Expr], str]) -> str:
    text = node.excel(ref)
    return f"({text})" if node.prec < prec else text


# --------------------------------------------------------------------------- Python semantics


def _number(value: Value) -> Decimal | FormulaError:
    if value is None:
        return Decimal(0)
    if isinstance(value, FormulaError):
        return value
    if isinstance(value, bool):
        return Decimal(int(value))
    if isinstance(value, Decimal):
        return value
    if isinstance(value, str):
        return VALUE
    return to_decimal(value)


def _text(value: Value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, Decimal):
        return format(value.normalize(), "f") if value != value.to_integral_value() else str(int(value))
    return str(value)


def _truthy(value: Value) -> bool:
    if isinstance(value, bool):
        return value
    if value is None:
        return False
    if isinstance(value, Decimal):
        return value != 0
    return bool(value)


def _compare(op: str, a: Value, b: Value) -> bool:
    """Excel's comparison: blank equals "" and 0, text compares without case."""
    if a is None and b is None:
        return op in ("=", "<=", ">=")
    if a is None:
        a = "" if isinstance(b, str) else Decimal(0)
    if b is None:
        b = "" if isinstance(a, str) else Decimal(0)
    if isinstance(a, bool) or isinstance(b, bool):
        a, b = (int(a) if isinstance(a, bool) else a), (int(b) if isinstance(b, bool) else b)
    if isinstance(a, str) != isinstance(b, str):
        # numbers sort before text in Excel
        x, y = (0, 1) if not isinstance(a, str) else (1, 0)
    elif isinstance(a, str):
        x, y = a.casefold(), b.casefold()
    else:
        x, y = Decimal(a), Decimal(b)
    return {"=": x == y, "<>": x != y, "<": x < y, "<=": x <= y, ">": x > y, ">=": x >= y}[op]


def _rounder(mode: str) -> Callable[[tuple[Expr, ...], Env], Value]:
    def run(args: tuple[Expr, ...], env: Env) -> Value:
        x = _number(args[0].evaluate(env))
        d = _number(args[1].evaluate(env)) if len(args) > 1 else Decimal(0)
        if isinstance(x, FormulaError):
            return x
        if isinstance(d, FormulaError):
            return d
        digits = int(d)
        if mode == "half":
            return excel_round(x, digits)
        rounding = {"up": ROUND_UP, "down": ROUND_DOWN, "ceil": ROUND_CEILING, "floor": ROUND_FLOOR}[mode]
        try:
            return x.quantize(Decimal(1).scaleb(-digits), rounding=rounding)
        except InvalidOperation:
            return VALUE
    return run


def _if(args: tuple[Expr, ...], env: Env) -> Value:
    cond = args[0].evaluate(env)
    if isinstance(cond, FormulaError):
        return cond
    if _truthy(cond):
        return args[1].evaluate(env)
    return args[2].evaluate(env) if len(args) > 2 else False


def _sum(args: tuple[Expr, ...], env: Env) -> Value:
    total = Decimal(0)
    for arg in args:
        value = arg.evaluate(env)
        if isinstance(value, FormulaError):
            return value
        if isinstance(value, Decimal):
            total += value
    return total


def _minmax(pick: Callable[..., Decimal]) -> Callable[[tuple[Expr, ...], Env], Value]:
    def run(args: tuple[Expr, ...], env: Env) -> Value:
        values = [a.evaluate(env) for a in args]
        for v in values:
            if isinstance(v, FormulaError):
                return v
        numbers = [v for v in values if isinstance(v, Decimal)]
        return pick(numbers) if numbers else Decimal(0)
    return run


def _lookup(args: tuple[Expr, ...], env: Env) -> Value:
    key = args[0].evaluate(env)
    if key is None:
        return None
    table = args[1]
    if not isinstance(table, Table):
        raise FormulaSyntaxError("LOOKUP の2番目の引数は表の名前です")
    return env.table(table.name).get(score_key(key)) or None


def score_key(value: Any) -> str:
    """The lookup key of a cell value: '1'…'5' or '-' (numbers compare as numbers)."""
    if isinstance(value, str):
        return value.strip()
    d = to_decimal(value)
    return str(int(d)) if d == d.to_integral_value() else str(d)


def _iferror(args: tuple[Expr, ...], env: Env) -> Value:
    value = args[0].evaluate(env)
    return args[1].evaluate(env) if isinstance(value, FormulaError) else value


def _len(args: tuple[Expr, ...], env: Env) -> Value:
    return Decimal(len(_text(args[0].evaluate(env))))


def _abs(args: tuple[Expr, ...], env: Env) -> Value:
    x = _number(args[0].evaluate(env))
    return x if isinstance(x, FormulaError) else abs(x)


_FUNCTIONS: dict[str, Callable[[tuple[Expr, ...], Env], Value]] = {
    "IF": _if,
    "IFERROR": _iferror,
    "AND": lambda args, env: all(_truthy(a.evaluate(env)) for a in args),
    "OR": lambda args, env: any(_truthy(a.evaluate(env)) for a in args),
    "NOT": lambda args, env: not _truthy(args[0].evaluate(env)),
    "ROUND": _rounder("half"),
    "ROUNDUP": _rounder("up"),
    "ROUNDDOWN": _rounder("down"),
    "SUM": _sum,
    "MIN": _minmax(min),
    "MAX": _minmax(max),
    "ABS": _abs,
    "LEN": _len,
    "ALLBLANK": lambda args, env: all(a.evaluate(env) is None for a in args),
    "ISBLANK": lambda args, env: args[0].evaluate(env) is None,
    "LOOKUP": _lookup,
}
_ARITY = {"IF": (2, 3), "IFERROR": (2, 2), "NOT": (1, 1), "ROUND": (2, 2), "ROUNDUP": (2, 2), "ROUNDDOWN": (2, 2),
          "ABS": (1, 1), "LEN": (1, 1), "ISBLANK": (1, 1), "LOOKUP": (2, 2)}
ROUNDING = ("ROUND", "ROUNDUP", "ROUNDDOWN")


# --------------------------------------------------------------------------- parsing

_TOKEN = re.compile(r"""
    \s*(?:
      (?P<num>\d+(?:\.\d+)?)
    | (?P<str>"(?:[^"]|"")*")
    | (?P<name>[A-Za-z_{][A-Za-z0-9_.{}]*(?:\[[A-Za-z0-9_.{}]+\](?:\.[A-Za-z0-9_{}]+)+)?)
    | (?P<op><>|<=|>=|[-+*/&=<>(),×÷−])
    )""", re.VERBOSE)
_ALIASES = {"×": "*", "÷": "/", "−": "-"}


def _tokens(text: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            raise FormulaSyntaxError(f"式の{pos + 1}文字目「{text[pos:pos + 10]}」を読み取れません")
        kind = m.lastgroup
        value = m.group(kind)
        out.append((kind, _ALIASES.get(value, value)))
        pos = m.end()
    return out


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokens(text)
        self.i = 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self, value: str | None = None) -> tuple[str, str]:
        token = self.peek()
        if token is None or (value is not None and token[1] != value):
            want = f"「{value}」" if value else "続き"
            raise FormulaSyntaxError(f"式「{self.text}」の{want}がありません")
        self.i += 1
        return token

    def parse(self) -> Expr:
        expr = self.binary(1)
        if self.peek() is not None:
            raise FormulaSyntaxError(f"式「{self.text}」の「{self.peek()[1]}」以降を読み取れません")
        return expr

    def binary(self, prec: int) -> Expr:
        left = self.unary()
        while True:
            token = self.peek()
            if token is None or token[0] != "op" or token[1] not in _PREC or _PREC[token[1]] < prec:
                return left
            op = self.take()[1]
            right = self.binary(_PREC[op] + 1)
            left = Bin(op, left, right)

    def unary(self) -> Expr:
        token = self.peek()
        if token and token == ("op", "-"):
            self.take()
            operand = self.unary()
            if isinstance(operand, Num):
                return Num("-" + operand.text)
            return Unary("-", operand)
        if token and token == ("op", "+"):
            self.take()
            return self.unary()
        return self.atom()

    def atom(self) -> Expr:
        kind, value = self.take()
        if kind == "num":
            return Num(value)
        if kind == "str":
            return Str(value[1:-1].replace('""', '"'))
        if kind == "op" and value == "(":
            inner = self.binary(1)
            self.take(")")
            return inner
        if kind == "name":
            upper = value.upper()
            token = self.peek()
            if token == ("op", "("):
                self.take()
                args: list[Expr] = []
                if self.peek() != ("op", ")"):
                    args.append(self.binary(1))
                    while self.peek() == ("op", ","):
                        self.take()
                        args.append(self.binary(1))
                self.take(")")
                if upper not in _FUNCTIONS:
                    raise FormulaSyntaxError(f"関数「{value}」はこの式の言語にありません")
                lo, hi = _ARITY.get(upper, (1, 255))
                if not lo <= len(args) <= hi:
                    raise FormulaSyntaxError(f"関数 {upper} の引数の数が正しくありません（{len(args)}個）")
                return Call(upper, tuple(args))
            if upper in ("TRUE", "FALSE"):
                return Bool(upper == "TRUE")
            return Name(value)
        raise FormulaSyntaxError(f"式「{self.text}」の「{value}」の位置が正しくありません")


def parse(text: str) -> Expr:
    """The unbound tree of ``text``. Raises FormulaSyntaxError (Japanese)."""
    return _Parser(text).parse()


def substitute(text: str, subs: Mapping[str, Any]) -> str:
    """``{year}``-style placeholders filled in."""
    for key, value in subs.items():
        text = text.replace("{" + key + "}", str(value))
    return text


def bind(tree: Expr, resolve: Callable[[str], Expr]) -> Expr:
    """The tree with every name resolved by ``resolve`` (which raises for an unknown name)."""
    return tree.map(lambda node: resolve(node.text) if isinstance(node, Name) else None)


# --------------------------------------------------------------------------- the noise guard

_POLY = ("+", "-", "*")


def guard_noise(tree: Expr) -> Expr:
    """The tree with each product that a rounding function rounds made exact first.

    A double holds 1.15 × 6,810,000 as 7,831,499.9999999991, so ROUND(…/1000, 0) would
    give 7,831 where the decimal value 7,831.5 gives 7,832. Inside ROUND, ROUNDUP and
    ROUNDDOWN, each largest sum of products whose operands have a known number of
    decimals gets ``ROUND(…, d)`` with d the decimals it can have: that never changes
    the decimal result and removes the binary noise. Python computes the same tree.
    """
    def visit(node: Expr) -> Expr | None:
        if isinstance(node, Call) and node.fn in ROUNDING:
            return Call(node.fn, (_guard_inside(node.args[0]), *(a.map(visit) for a in node.args[1:])))
        return None

    return tree.map(visit)


def _guard_inside(node: Expr) -> Expr:
    if _is_poly(node):
        d = _decimals(node)
        if d is not None and d > 0 and any(isinstance(n, Bin) and n.op == "*" for n in node.walk()):
            return Call("ROUND", (node, Num(str(d))))
        return node
    if isinstance(node, Call) and node.fn in ROUNDING:
        return guard_noise(node)
    kids = node.children()
    if not kids:
        return node
    return node.rebuild(tuple(_guard_inside(k) for k in kids))


def _is_poly(node: Expr) -> bool:
    if isinstance(node, Bin):
        return node.op in _POLY and _is_poly(node.left) and _is_poly(node.right)
    if isinstance(node, Unary):
        return _is_poly(node.operand)
    return isinstance(node, Num | Ref)


def _decimals(node: Expr) -> int | None:
    if isinstance(node, Num):
        return len(node.text.partition(".")[2])
    if isinstance(node, Ref):
        return node.decimals
    if isinstance(node, Unary):
        return _decimals(node.operand)
    if isinstance(node, Bin):
        a, b = _decimals(node.left), _decimals(node.right)
        if a is None or b is None:
            return None
        return a + b if node.op == "*" else max(a, b)
    return None


def excel_formula(tree: Expr, cell_of: Callable[[str], str]) -> str:
    """``=…`` text of a bound tree: each reference as ``cell_of(path)``, a table as its defined name."""
    return "=" + tree.excel(lambda node: f"tbl_{node.name}" if isinstance(node, Table) else cell_of(node.path))


def with_decimals(tree: Expr, decimals: Callable[[str], int | None]) -> Expr:
    """The tree with each reference's ``decimals`` filled from ``decimals(path)``."""
    return tree.map(lambda n: replace(n, decimals=decimals(n.path)) if isinstance(n, Ref) else None)
