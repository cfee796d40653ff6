"""bankguard: real-time risk monitoring for a bank on Kafka.

The core package holds what every part shares: settings, topic names, event
schemas, Kafka client configuration, the embedded broker and the CLI. The
producers, stream agents, models and dashboards live in their own top-level
folders and are imported as ``bankguard.producers`` and so on.
"""

from importlib.metadata import version

__version__ = version("bankguard")  # pyproject.toml's project.version, the one place it is set
