"""The cluster query language's parser: recursive descent over the raw text.

Which token comes next depends on the position (a bare regex value may hold balanced
parentheses), so the tokenizer is the parser's own few regular expressions, not a separate pass.
"""

from __future__ import annotations

import re
from typing import NoReturn

from ecspilot.domain.cql.syntax import (
    BARE,
    EXISTS,
    KEYWORDS,
    LIST_OPS,
    MAX_LENGTH,
    NOT_EXISTS,
    OPERATORS,
    And,
    Compare,
    Exists,
    Expr,
    Not,
    Op,
    Or,
    operator_problem,
    subject_problem,
    value_problem,
)
from ecspilot.errors import QueryLanguageError

_MAX_DEPTH = 100  # parentheses and nots; keeps recursion far from Python's limit
_TOKEN = re.compile(r"[^\s()\[\],'\"!=<>~&|]+")
_WORD_OP = re.compile(r"!?[A-Za-z_]+")
_SYMBOL_OP = re.compile(r"==|!=|>=|<=|=~|!~|>|<")
_OP_CHARS = re.compile(r"[!=<>~]+")


class _Parser:
    """Recursive descent over the raw text; which token comes next depends on the position."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.depth = 0

    def fail(self, message: str, pos: int | None = None) -> NoReturn:
        raise QueryLanguageError(message, self.text, (self.pos if pos is None else pos) + 1)

    def skip_space(self) -> bool:
        """Skip whitespace; True when input remains."""
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1
        return self.pos < len(self.text)

    def found(self) -> str:
        token = _TOKEN.match(self.text, self.pos) or _OP_CHARS.match(self.text, self.pos)
        return token.group() if token else self.text[self.pos]

    def connective(self, word: str, symbol: str) -> bool:
        if not self.skip_space():
            return False
        if self.text.startswith(symbol, self.pos):
            self.pos += len(symbol)
            return True
        token = _TOKEN.match(self.text, self.pos)
        if token and token.group() == word:
            self.pos = token.end()
            return True
        return False

    def expression(self) -> Expr:
        operands = [self.conjunction()]
        while self.connective("or", "||"):
            operands.append(self.conjunction())
        return operands[0] if len(operands) == 1 else Or(tuple(operands))

    def conjunction(self) -> Expr:
        operands = [self.unary()]
        while self.connective("and", "&&"):
            operands.append(self.unary())
        return operands[0] if len(operands) == 1 else And(tuple(operands))

    def unary(self) -> Expr:
        if not self.skip_space():
            self.fail("expected a condition, found the end of the expression")
        start = self.pos
        if self.depth >= _MAX_DEPTH:
            self.fail(f"expression nests deeper than {_MAX_DEPTH} levels")
        token = _TOKEN.match(self.text, start)
        char = self.text[start]
        if char in "!(" or (token and token.group() == "not"):
            self.pos = token.end() if token else start + 1
            self.depth += 1
            inner = self.expression() if char == "(" else Not(self.unary())
            self.depth -= 1
            if char == "(":
                if not self.skip_space():
                    self.fail("unbalanced parenthesis: '(' is never closed", start)
                if self.text[self.pos] != ")":
                    self.fail(f"expected ')', 'and' or 'or', found {self.found()!r}")
                self.pos += 1
            return inner
        if token is None:
            self.fail(f"expected a condition, found {self.found()!r}")
        return self.condition(token.group())

    def condition(self, subject: str) -> Expr:
        start = self.pos
        if problem := subject_problem(subject):
            self.fail(problem, start)
        self.pos += len(subject)
        if not self.skip_space():
            self.fail(f"expected an operator after {subject}")
        op_start = self.pos
        spelled = self.operator_token()
        op = OPERATORS.get(spelled)
        if op is None:
            self.fail(f"unknown operator {spelled!r} after {subject}", op_start)
        if problem := operator_problem(subject, op):
            self.fail(problem, op_start)
        if op in (EXISTS, NOT_EXISTS):
            return Exists(subject, negated=op == NOT_EXISTS)
        op = Op(op)
        values = self.value_list(spelled) if op in LIST_OPS else [self.scalar(spelled)]
        for value, value_start in values:
            if problem := value_problem(subject, op, value):
                self.fail(problem, value_start)
        if op in LIST_OPS:
            return Compare(subject, op, tuple(value for value, _ in values))
        return Compare(subject, op, values[0][0])

    def operator_token(self) -> str:
        word = _WORD_OP.match(self.text, self.pos)
        symbol = _SYMBOL_OP.match(self.text, self.pos)
        run = _OP_CHARS.match(self.text, self.pos)
        if word and (symbol is None or len(word.group()) > len(symbol.group())):
            token = word.group()
        elif symbol and run and run.group() == symbol.group():
            token = symbol.group()  # '<>' or '==!' is one unknown operator, not '<' then a value
        else:
            token = self.found()
        self.pos += len(token)
        return token

    def quoted(self) -> tuple[str, int]:
        start = self.pos
        end = self.text.find(self.text[start], start + 1)
        if end < 0:
            self.fail("unterminated quoted value", start)
        self.pos = end + 1
        return self.text[start + 1 : end], start

    def scalar(self, after: str) -> tuple[str, int]:
        if not self.skip_space():
            self.fail(f"missing value after {after!r}")
        start = self.pos
        if self.text[start] in "'\"":
            return self.quoted()
        # A bare value ends at a space, '&&', '||' or an unmatched ')'; a bare
        # regex may hold balanced parentheses: =~ (t2|t3).*
        depth = 0
        while self.pos < len(self.text) and not self.text[self.pos].isspace():
            char = self.text[self.pos]
            if depth == 0 and (char == ")" or self.text.startswith(("&&", "||"), self.pos)):
                break
            depth += {"(": 1, ")": -1}.get(char, 0)
            self.pos += 1
        value = self.text[start : self.pos]
        if not value or value in KEYWORDS:
            self.fail(f"missing value after {after!r}", start)
        if depth:
            self.fail("unbalanced parenthesis in value; quote values that contain '('", start)
        return value, start

    def value_list(self, after: str) -> list[tuple[str, int]]:
        if not self.skip_space() or self.text[self.pos] != "[":
            self.fail(f"expected '[' to start the value list after {after!r}")
        start = self.pos
        self.pos += 1
        values: list[tuple[str, int]] = []
        while True:
            if not self.skip_space():
                self.fail("unbalanced bracket: '[' is never closed", start)
            if self.text[self.pos] in "'\"":
                values.append(self.quoted())
            else:
                bare = BARE.match(self.text, self.pos)
                if bare is None or bare.group() in KEYWORDS:
                    empty = not values and self.text[self.pos] == "]"
                    self.fail("empty value list" if empty else "missing value in list")
                values.append((bare.group(), self.pos))
                self.pos = bare.end()
            if not self.skip_space():
                self.fail("unbalanced bracket: '[' is never closed", start)
            self.pos += 1
            if self.text[self.pos - 1] == "]":
                return values
            if self.text[self.pos - 1] != ",":
                self.pos -= 1
                self.fail(f"expected ',' or ']' in value list, found {self.found()!r}")


def parse(expression: str) -> Expr:
    """Parse a cluster query language expression into an AST.

    Raises :class:`QueryLanguageError` with the 1-based column of the offending token.
    """
    if len(expression) > MAX_LENGTH:
        raise QueryLanguageError(
            f"expression is longer than {MAX_LENGTH} characters", expression, MAX_LENGTH + 1
        )
    parser = _Parser(expression)
    if not parser.skip_space():
        parser.fail("empty expression", 0)
    expr = parser.expression()
    if parser.skip_space():
        if expression[parser.pos] == ")":
            parser.fail("unbalanced parenthesis: ')' has no matching '('")
        parser.fail(f"unexpected {parser.found()!r}; expected 'and', 'or' or the end")
    return expr
