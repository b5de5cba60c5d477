"""Every task kind builds a valid group (or the right function), and bad input names the problem."""

import math

import numpy as np
import pytest

from li2.errors import SpecError
from li2.groups import build_task, check_group

GROUPS = [
    ({"group": "cyclic", "order": 7}, 7, True),
    ({"group": "product", "factors": [2, 3, 4]}, 24, True),
    ({"group": "dihedral", "n": 3}, 6, False),
    ({"group": "dihedral", "n": 4}, 8, False),
    ({"group": "symmetric", "n": 3}, 6, False),
    ({"group": "symmetric", "n": 4}, 24, False),
    ({"group": "alternating", "n": 4}, 12, False),
    ({"group": "alternating", "n": 5}, 60, False),
    ({"group": "quaternion"}, 8, False),
    ({"group": "multiplicative", "prime": 11}, 10, True),
]


@pytest.mark.parametrize("spec,order,abelian", GROUPS, ids=lambda v: str(v))
def test_every_group_kind_satisfies_the_axioms(spec, order, abelian):
    task = build_task(spec)
    assert task.order == order and task.table.shape == (order, order)
    identity, inverse = check_group(task.table)  # closure, identity, inverses, associativity
    assert identity == task.identity == 0
    assert np.array_equal(inverse, task.inverse)
    assert task.is_abelian is abelian
    assert np.array_equal(task.table[np.arange(order), task.inverse], np.zeros(order))


def test_group_orders_follow_the_formulas():
    assert build_task({"group": "symmetric", "n": 5}).order == math.factorial(5)
    assert build_task({"group": "alternating", "n": 6}).order == math.factorial(6) // 2
    assert build_task({"group": "dihedral", "n": 9}).order == 18


def test_product_is_mixed_radix_addition():
    task = build_task({"group": "product", "factors": [2, 3]})
    # index = a1*3 + a2 ; (1,2) + (1,2) = (0,1) -> 1
    assert task.table[5, 5] == 1 and task.factors == (2, 3)


def test_multiplicative_group_multiplies_mod_p():
    task = build_task({"group": "multiplicative", "prime": 7})
    assert task.table[2, 3] == (3 * 4) % 7 - 1  # elements 3 and 4 have indices 2 and 3


def test_quaternion_relations():
    t = build_task({"group": "quaternion"}).table  # 0:1 1:-1 2:i 3:-i 4:j 5:-j 6:k 7:-k
    assert t[2, 2] == 1 and t[4, 4] == 1 and t[6, 6] == 1  # i² = j² = k² = −1
    assert t[2, 4] == 6 and t[4, 2] == 7  # ij = k, ji = −k


def test_symmetric_group_composes_permutations_in_lexicographic_order():
    t = build_task({"group": "symmetric", "n": 3}).table  # 0:(0,1,2) 1:(0,2,1) 2:(1,0,2) ...
    assert t[1, 2] != t[2, 1]  # S_3 is not commutative
    assert t[1, 1] == 0  # a transposition squares to e


def test_inputs_and_labels_fold_left_over_operands():
    task = build_task({"group": "symmetric", "n": 3})
    x, y = task.inputs(3), task.labels(3)
    assert x.shape == (216, 3) and (x[1] == [0, 0, 1]).all()
    assert (y == task.table[task.table[x[:, 0], x[:, 1]], x[:, 2]]).all()
    assert task.dataset_hash(2) != task.dataset_hash(3)


def test_expression_computes_the_polynomial():
    task = build_task({"group": "expression", "expression": "x**2 + x*y + y**2", "modulus": 7})
    a = np.arange(7)
    assert np.array_equal(task.table, (a[:, None] ** 2 + a[:, None] * a[None, :] + a[None, :] ** 2) % 7)
    assert not task.is_group and task.identity is None
    neg = build_task({"group": "expression", "expression": "-(x - 3*y)**3 + 5", "modulus": 11})
    assert neg.table[4, 2] == (-((4 - 6) ** 3) + 5) % 11


@pytest.mark.parametrize(
    "text",
    [
        "__import__('os').system('echo hi')",
        "x.__class__",
        "2**999",
        "x**y",
        "z + 1",
        "1.5*x",
        "x / y",
        "open('f')",
        "x y",
        "(x + 1",
        "",
        "lambda: 1",
        "x; y",
        "[x]",
        "x ** -1",
    ],
)
def test_expressions_outside_the_grammar_are_rejected(text):
    with pytest.raises(SpecError) as err:
        build_task({"group": "expression", "expression": text, "modulus": 7})
    assert "task.expression" in err.value.errors


@pytest.mark.parametrize(
    "table,axiom",
    [
        ([[0, 1], [1, 2]], "closure"),
        ([[1, 1], [1, 1]], "identity"),
        ([[0, 1], [1, 1]], "inverses"),
        ([[0, 1, 2], [1, 0, 0], [2, 0, 0]], "associativity"),
        ([[0, 1], [1]], "square"),
        ([[0, 1], [1, "a"]], "integers"),
    ],
)
def test_bad_tables_name_the_failing_axiom(table, axiom):
    with pytest.raises(SpecError) as err:
        build_task({"group": "table", "table": table})
    assert axiom in err.value.errors["task.table"][0]


def test_a_valid_user_table_is_accepted():
    z3 = [[(a + b) % 3 for b in range(3)] for a in range(3)]
    task = build_task({"group": "table", "table": z3})
    assert task.is_group and task.is_abelian and task.identity == 0


@pytest.mark.parametrize(
    "spec,field",
    [
        ({"group": "klein"}, "task.group"),
        ({"group": "multiplicative", "prime": 9}, "task.prime"),
        ({"group": "symmetric", "n": 7}, "task.n"),
        ({"group": "product", "factors": [1, 3]}, "task.factors"),
    ],
)
def test_bad_group_parameters_name_the_field(spec, field):
    with pytest.raises(SpecError) as err:
        build_task(spec)
    assert field in err.value.errors
