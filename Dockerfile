# bankguard image for docker-compose.yml: producers and workers (`bankguard ...`).
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
# Only what the package is built from: no .venv, .git or run directories in the image.
COPY pyproject.toml README.md ./
COPY bankguard ./bankguard
COPY producers ./producers
COPY stream_agents ./stream_agents
COPY models ./models
COPY dashboards ./dashboards
COPY backtest ./backtest
RUN pip install . \
    && useradd --system --uid 10001 --home-dir /var/lib/bankguard --create-home bankguard \
    && cd / && rm -rf /src

# Worker state and run files live under the service user's home, not in site-packages.
USER bankguard
WORKDIR /var/lib/bankguard
ENV BANKGUARD_RUN_DIR=/var/lib/bankguard/run

CMD ["bankguard", "--help"]
