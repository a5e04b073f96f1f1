"""Build the `SandboxStudent` for a box whose cells have run: which arrays are the network, how to call each
handout function, and every adaptation and problem in plain sentences."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from grader.adapt.calls import CallPlan, SignatureProblem, plan_call
from grader.adapt.data_form import data_form
from grader.adapt.names import LEARNING_RATE_NAMES
from grader.adapt.network import NetworkLayout, choose_network, initial_params
from grader.adapt.shapes import LayoutProblem
from grader.adapt.student import HANDOUT_FUNCTIONS, PARAMETER_ROLES, SandboxStudent
from grader.sandbox import RunLog, Sandbox, Symbol


def build_student(box: Sandbox, run: RunLog) -> SandboxStudent:
    """A SandboxStudent for a box whose cells have run: layout, call plans, adaptations and problems."""
    namespace = box.namespace()
    signatures = {name: s.signature for name, s in namespace.items() if s.kind in ("function", "callable")}
    found = choose_network(run.network, run.used_names)
    layout = found if isinstance(found, NetworkLayout) else None
    layout_problem = found.message if isinstance(found, LayoutProblem) else None
    initial, notes = initial_params(run.network, layout) if layout else (None, [])
    adaptations = list(layout.notes) + notes if layout else []
    plans: dict[str, CallPlan] = {}
    problems: dict[str, str] = {}
    for function in HANDOUT_FUNCTIONS:
        if function not in signatures:
            continue
        if layout is None:
            break  # every handout function is blocked by the one layout problem
        plan = _plan(function, signatures[function], layout)
        if isinstance(plan, str):
            problems[function] = plan
            continue
        plans[function] = plan
        adaptations += plan.deviations
    rate_global = _global_learning_rate(namespace, plans)
    if rate_global:
        adaptations.append(f"train_one_sample takes no learning_rate: the grader sets your global {rate_global} to "
                           "the rate it probes with")
    form = data_form(namespace)
    adaptations += [form.note] if form.note else []
    functions = {name: tuple(s or ()) for name, s in signatures.items()}
    adaptations = list(dict.fromkeys(adaptations))
    return SandboxStudent(box, layout, initial, functions, plans, problems, form, adaptations, layout_problem,
                          rate_global)


def _global_learning_rate(namespace: Mapping[str, Symbol], plans: Mapping[str, CallPlan]) -> str | None:
    """The one float global named like a learning rate, when train_one_sample takes no learning_rate."""
    plan = plans.get("train_one_sample")
    if plan is None or plan.takes("learning_rate"):
        return None
    found = [n for n, s in namespace.items() if n.lower() in LEARNING_RATE_NAMES and s.kind == "float"]
    return found[0] if len(found) == 1 else None


def _plan(function: str, signature: Any, layout: NetworkLayout) -> CallPlan | str:
    """The call plan of one handout function, or the precise reason it cannot be called."""
    if signature is None:
        return f"{function}: the grader cannot read its signature (it is not a plain Python function)"
    plan = plan_call(function, signature)
    if isinstance(plan, SignatureProblem):
        return plan.message
    taken = [a for a in plan.arguments if a.role in PARAMETER_ROLES]
    if len(taken) == 1 and len(layout.holders) > 1:
        lone = taken[0]
        if any(getattr(p, "name", None) == lone.parameter and getattr(p, "has_default", False) for p in signature):
            # An optional `params=None` (meaning "the global network"): the handout's call leaves it out, and so
            # does the grader, which writes into the student's own arrays that the default reads.
            return replace(plan, arguments=tuple(a for a in plan.arguments if a is not lone),
                           defaults_kept=(*plan.defaults_kept, lone.parameter))
        other = next(r for r in PARAMETER_ROLES if r != lone.role)
        return (
            f"{plan.student_signature} takes {lone.role} ({lone.parameter}) but not {other}; "
            f"expected both or neither (the network is held in {', '.join(layout.holders)})"
        )
    return plan
