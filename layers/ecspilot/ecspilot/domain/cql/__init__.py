"""The ECS cluster query language: parse, print and evaluate ``memberOf`` expressions.

Grammar, lowest precedence first (``not`` binds tightest, then ``and``, then ``or``)::

    expression := conjunction (("or" | "||") conjunction)*
    conjunction := unary (("and" | "&&") unary)*
    unary      := ("not" | "!") unary | "(" expression ")" | condition
    condition  := subject operator [argument]
    argument   := value | "[" value ("," value)* "]"       (a list for in / !in)
    value      := bare-word | 'single quoted' | "double quoted"

Subjects are ``attribute:NAME``, ``task:group`` and the fields ECS documents
(``agentConnected``, ``agentVersion``, ``ec2InstanceId``, ``registeredAt``,
``runningTasksCount``); each field only takes the operators ECS lists for it.
Operator aliases are folded to one canonical spelling, so ``to_text`` prints a
canonical form and ``parse(to_text(e)) == e``. Checks live in the node classes,
so every AST that can be built can also be printed and parsed back.

Modules: :mod:`.syntax` (vocabulary, node classes), :mod:`.parser`, :mod:`.printer`,
:mod:`.evaluator` (against one container instance's facts).
"""

from ecspilot.domain.cql.evaluator import InstanceFacts, Verdict, evaluate
from ecspilot.domain.cql.parser import parse
from ecspilot.domain.cql.printer import to_text
from ecspilot.domain.cql.syntax import (
    ATTRIBUTE_PREFIX,
    FIELDS,
    MAX_LENGTH,
    OPERATORS,
    TASK_GROUP,
    And,
    Compare,
    Exists,
    Expr,
    Not,
    Op,
    Or,
    subject_problem,
)

__all__ = [
    "ATTRIBUTE_PREFIX",
    "FIELDS",
    "MAX_LENGTH",
    "OPERATORS",
    "TASK_GROUP",
    "And",
    "Compare",
    "Exists",
    "Expr",
    "InstanceFacts",
    "Not",
    "Op",
    "Or",
    "Verdict",
    "evaluate",
    "parse",
    "subject_problem",
    "to_text",
]
