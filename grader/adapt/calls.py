"""Call a student's function with the handout's values: a `CallPlan` maps each handout parameter onto the
student's signature by name (positional or keyword) and lists every way the signature differs from the handout;
a `SignatureProblem` says, naming the function and the parameter, why no sensible mapping exists."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from grader.adapt.names import HANDOUT, PER_SAMPLE, REQUIRED, ROLE_WORDS, Role, role_of
from grader.sandbox import Param


@dataclass(frozen=True)
class SignatureProblem:
    """No sensible mapping: `message` names the function and the parameter."""

    function: str
    parameter: str | None
    message: str


@dataclass(frozen=True)
class Argument:
    """One grader value passed to the student: which parameter, which role, positional or by keyword."""

    parameter: str
    role: Role
    positional: bool


@dataclass(frozen=True)
class CallPlan:
    """How to call one student function with the grader's values, and how its signature differs."""

    function: str
    student_signature: str
    handout_signature: str
    arguments: tuple[Argument, ...]
    defaults_kept: tuple[str, ...] = ()
    not_taken: tuple[str, ...] = ()  # handout parameters the student's function does not take
    deviations: tuple[str, ...] = ()

    def takes(self, role: Role) -> bool:
        return any(a.role == role for a in self.arguments)

    @property
    def params_as_arguments(self) -> bool:
        """True when the weights/biases go in as arguments (else the grader sets the globals)."""
        return self.takes("weights") or self.takes("biases")

    @property
    def conforms(self) -> bool:
        return not self.deviations


# ------------------------------------------------------------------------------------------ parameters


def as_param(p: Any) -> Param:
    """A Param from a Param, a Parameter-like object, a dict or a (name, kind, has_default, repr) tuple."""
    if isinstance(p, Param):
        return p
    if isinstance(p, Mapping):
        fields = (
            p.get("name"),
            p.get("kind", "POSITIONAL_OR_KEYWORD"),
            p.get("has_default", False),
            p.get("default_repr"),
        )
    elif isinstance(p, (tuple, list)):
        fields = (tuple(p) + ("POSITIONAL_OR_KEYWORD", False, None)[len(p) - 1 :])[:4]
    else:
        fields = (
            p.name,
            getattr(p, "kind", "POSITIONAL_OR_KEYWORD"),
            getattr(p, "has_default", False),
            getattr(p, "default_repr", None),
        )
    name, kind, has_default, default_repr = fields
    kind = str(getattr(kind, "name", kind)).upper().replace(" ", "_")
    return Param(str(name), kind, bool(has_default), default_repr)


def render_signature(function: str, params: Sequence[Param]) -> str:
    """f(sample, y, learning_rate=0.003), with '/', '*', *args and **kwargs as Python writes them."""
    parts: list[str] = []
    star_written = False
    for i, p in enumerate(params):
        if p.kind == "KEYWORD_ONLY" and not star_written:
            parts.append("*")
            star_written = True
        if p.kind == "VAR_POSITIONAL":
            parts.append(f"*{p.name}")
            star_written = True
        elif p.kind == "VAR_KEYWORD":
            parts.append(f"**{p.name}")
        else:
            parts.append(f"{p.name}={p.default_repr}" if p.has_default else p.name)
        if p.kind == "POSITIONAL_ONLY" and (i + 1 == len(params) or params[i + 1].kind != "POSITIONAL_ONLY"):
            parts.append("/")
    return f"{function}({', '.join(parts)})"


def handout_signature(function: str) -> str:
    params = [Param(n, has_default=d is not None, default_repr=d) for n, _, d in HANDOUT[function]]
    return render_signature(function, params)


# ---------------------------------------------------------------------------------------------- plans


def _plain_list(names: Sequence[str]) -> str:
    return ", ".join(names)


def _lr_default_note(function: str, p: Param) -> str | None:
    try:
        value = float(p.default_repr) if p.default_repr is not None else None
    except ValueError:
        value = None
    if not p.has_default or value == 0.003:
        return None
    return (
        f"{function}'s {p.name} defaults to {p.default_repr}, the handout's to 0.003 "
        f"(the grader passes the rate explicitly)"
    )


def plan_call(function: str, signature: Sequence[Any]) -> CallPlan | SignatureProblem:
    """Map the handout's parameters of `function` onto the student's `signature` (a list of parameters)."""
    params = [as_param(p) for p in signature]
    shown = render_signature(function, params)
    expected = handout_signature(function) if function in HANDOUT else f"{function}(...)"
    by_role: dict[Role, Param] = {}
    unmatched: list[Param] = []
    for p in params:
        if p.kind in ("VAR_POSITIONAL", "VAR_KEYWORD"):
            continue
        role = role_of(p.name, function)
        if role is None:
            unmatched.append(p)
            continue
        if role in by_role:
            return SignatureProblem(
                function,
                p.name,
                f"{shown}: parameters {by_role[role].name} and {p.name} both look like "
                f"{ROLE_WORDS[role]}; the grader cannot tell which is which",
            )
        by_role[role] = p
    for p in unmatched:
        if not p.has_default:
            wanted = ", ".join(ROLE_WORDS[r] for r, _ in _roles_for(function))
            return SignatureProblem(
                function,
                p.name,
                f"{shown}: required parameter {p.name} matches none of the values the grader "
                f"can pass ({wanted}); expected {expected}",
            )
    var_keyword = any(p.kind == "VAR_KEYWORD" for p in params)
    for role in REQUIRED.get(function, ()):
        if role not in by_role and not var_keyword:
            return SignatureProblem(
                function, None, f"{shown} takes no parameter for {ROLE_WORDS[role]}; expected {expected}"
            )
    return _plan(function, params, by_role, unmatched, shown, expected, var_keyword)


def _roles_for(function: str) -> list[tuple[Role, str]]:
    extra: list[Role] = ["weights", "biases"] + ([] if function in PER_SAMPLE else ["images", "labels"])
    roles = [(r, n) for n, r, _ in HANDOUT.get(function, ())]
    return roles + [(r, r) for r in extra if r not in {x for x, _ in roles}]


def _positional_problem(
    function: str, params: Sequence[Param], by_role, shown: str
) -> SignatureProblem | None:
    """Positional-only parameters must be filled left to right: a gap before a filled one cannot be passed."""
    gap = None
    mapped = {p.name for p in by_role.values()}
    for p in params:
        if p.kind != "POSITIONAL_ONLY":
            break
        if p.name not in mapped:
            gap = gap or p
        elif gap is not None:
            return SignatureProblem(
                function,
                gap.name,
                f"{shown}: positional-only parameter {gap.name} comes "
                f"before {p.name} and the grader has no value for it",
            )
    return None


def _plan(function, params, by_role, unmatched, shown, expected, var_keyword) -> CallPlan | SignatureProblem:
    problem = _positional_problem(function, params, by_role, shown)
    if problem:
        return problem
    role_of_param = {p.name: r for r, p in by_role.items()}
    arguments = [
        Argument(p.name, role_of_param[p.name], p.kind == "POSITIONAL_ONLY")
        for p in params
        if p.name in role_of_param
    ]
    handout = HANDOUT.get(function, ())
    handout_roles = {r for _, r, _ in handout}
    deviations: list[str] = []
    renamed = [f"{by_role[r].name} for {n}" for n, r, _ in handout if r in by_role and by_role[r].name != n]
    if renamed:
        deviations.append(
            f"{shown}: the handout's parameters are taken by other names ({_plain_list(renamed)})"
        )
    extras = [a.parameter for a in arguments if a.role not in handout_roles]
    if extras:
        word = "parameter" if len(extras) == 1 else "parameters"
        verb = "is" if len(extras) == 1 else "are"
        it = "it" if len(extras) == 1 else "them"
        deviations.append(
            f"{shown}: {word} {_plain_list(extras)} {verb} not in the handout's {expected}; "
            f"the grader passes its arrays to {it}"
        )
    not_taken = [n for n, r, _ in handout if r not in by_role]
    if var_keyword:  # the handout's values go in by their handout names
        arguments += [Argument(n, r, False) for n, r, _ in handout if r not in by_role]
        not_taken = []
    for n in not_taken:
        if n == "learning_rate":
            deviations.append(f"{function} takes no learning_rate: it cannot be probed at other rates")
        else:
            deviations.append(f"{function} takes no {n} (the handout's {expected})")
    kept = [p.name for p in unmatched]
    if kept:
        deviations.append(
            f"{shown}: {_plain_list(kept)} keep{'s' if len(kept) == 1 else ''} "
            f"{'its default' if len(kept) == 1 else 'their defaults'}"
        )
    if "learning_rate" in by_role:
        note = _lr_default_note(function, by_role["learning_rate"])
        deviations += [note] if note else []
    return CallPlan(
        function, shown, expected, tuple(arguments), tuple(kept), tuple(not_taken), tuple(deviations)
    )


# ------------------------------------------------------------------------------------------ arguments


def call_arguments(
    plan: CallPlan, signature: Sequence[Any], values: Mapping[str, Any]
) -> tuple[list[Any], dict[str, Any], dict[str, int]]:
    """(args, kwargs, {role: position}) for the sandbox: the planned arguments positionally, left to right,
    as far as the signature allows, so that the sandbox can return the arguments it mutated; the rest by
    keyword."""
    by_parameter = {a.parameter: a for a in plan.arguments}
    args: list[Any] = []
    positions: dict[str, int] = {}
    for p in signature:
        argument = by_parameter.get(p.name)
        if p.kind not in ("POSITIONAL_ONLY", "POSITIONAL_OR_KEYWORD") or argument is None:
            break
        positions[argument.role] = len(args)
        args.append(values[argument.role])
    kwargs = {a.parameter: values[a.role] for a in plan.arguments if a.role not in positions}
    return args, kwargs, positions
