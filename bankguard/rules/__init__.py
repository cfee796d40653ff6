"""Detection rules: the registry fills as the rule modules are imported here."""

from bankguard.rules import context, keyword_lists, large_amount  # noqa: F401  (registration)
from bankguard.rules.base import RULES, Batch, Hit
from bankguard.rules.engine import active_rules, evaluate, evaluate_frame, features_for

__all__ = ["RULES", "Batch", "Hit", "active_rules", "evaluate", "evaluate_frame", "features_for"]
