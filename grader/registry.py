"""Which checks exist, per question, and which settings dataclass each question's rubric section fills."""

from grader.checks.backprop import BackpropSettings
from grader.checks.forward import ForwardSettings
from grader.checks.helpers import HelperSettings
from grader.checks.initialisation import InitSettings
from grader.checks.training import TrainingSettings

TENSORS = ("W1", "b1", "W2", "b2", "W3", "b3")

KNOWN_CHECKS: dict[str, tuple[str, ...]] = {
    "helpers": tuple(f"helpers.{h}" for h in
                     ("sigmoid", "dsigmoid", "softmax", "cross_entropy_loss", "integer_to_one_hot")),
    "Q1": ("Q1.structure", "Q1.W1.distribution", "Q1.W2.distribution", "Q1.W3.distribution", "Q1.biases"),
    "Q2": ("Q2.loss", "Q2.prediction", "Q2.dataset.loss", "Q2.dataset.accuracy", "Q2.signature"),
    "Q3": tuple(f"Q3.{t}" for t in TENSORS) + ("Q3.real_step", "Q3.learning_rate", "Q3.determinism", "Q3.zero_pixels",
                                                "Q3.signature"),
    "Q4": ("Q4.loop", "Q4.training", "Q4.signature"),
}

SETTINGS_CLASSES: dict[str, type] = {
    "helpers": HelperSettings,
    "Q1": InitSettings,
    "Q2": ForwardSettings,
    "Q3": BackpropSettings,
    "Q4": TrainingSettings,
}
