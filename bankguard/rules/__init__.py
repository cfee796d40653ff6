"""Detection rules: the registry fills as the rule modules and the scenario units (whose
context rules the scenario registry registers) are imported here."""

import bankguard.scenarios  # noqa: F401  (registration of each scenario's context rules)
from bankguard.rules import keyword_lists, large_amount  # noqa: F401  (registration)
from bankguard.rules.base import RULES, Batch, Hit
from bankguard.rules.engine import active_rules, evaluate, evaluate_frame, features_for

__all__ = ["RULES", "Batch", "Hit", "active_rules", "evaluate", "evaluate_frame", "features_for"]
