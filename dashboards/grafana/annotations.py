"""Dashboard annotations from Prometheus queries: event markers with no Grafana plugin.

The SDK's annotation model lacks the Prometheus datasource's own fields (the title and
tags drawn from series labels, the step), so :class:`PrometheusAnnotation` adds them.
"""

from __future__ import annotations

from grafana_foundation_sdk.cog.builder import Builder
from grafana_foundation_sdk.models import dashboard as model

from .panels import DATASOURCE

#: A rules version's series, for the first minutes after it appeared on any worker: one
#: marker per change, not one per worker or restart (a worker coming back with the version
#: others run adds nothing). Matches ``bankguard_rules_config_info`` as prometheus-client
#: exports it (the info metric's sample is always 1; its ``version`` label changes).
RULES_CHANGES = ("count by (version) (bankguard_rules_config_info)"
                 " unless count by (version) (bankguard_rules_config_info offset 2m)")


class PrometheusAnnotation(model.AnnotationQuery, Builder[model.AnnotationQuery]):
    """An annotation query whose markers take their title and tags from series labels."""

    def __init__(self, name: str, expr: str, *, title: str, text: str, tag_keys: tuple[str, ...],
                 color: str, step: str = "30s") -> None:
        super().__init__(name=name, datasource=DATASOURCE, enable=True, hide=False, icon_color=color, expr=expr)
        self.title_format, self.text_format, self.tag_keys, self.step = title, text, tag_keys, step

    def to_json(self) -> dict[str, object]:
        return super().to_json() | {
            "titleFormat": self.title_format,
            "textFormat": self.text_format,
            "tagKeys": ",".join(self.tag_keys),
            "step": self.step,
            "useValueForTime": False,
        }

    def build(self) -> PrometheusAnnotation:  # the dashboard builder takes builders
        return self


def rules_changes() -> PrometheusAnnotation:
    """A marker where a new rules configuration became active (its audit record names signer and diff)."""
    return PrometheusAnnotation(
        "Rules changes", RULES_CHANGES, title="rules {{version}}",
        text="rules configuration {{version}} active (signer and diff: the bankguard.audit.rules topic)",
        tag_keys=("version",), color="orange")
