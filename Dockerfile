# syntax=docker/dockerfile:1
# Perstack in a container: `docker build -t perstack .`, then
#   docker run --rm -it -e FIREWORKS_API_KEY -v ./ws:/workspace perstack \
#     start my-expert "query" --provider fireworks
# The workspace (perstack.toml, .env, and the jobs under perstack/) is the mounted /workspace.

# Node.js for `npx` skills, taken as built files: Debian's npm package would pull in hundreds of
# packages and an older Node.
FROM node:22-bookworm-slim AS node

# Every wheel the image needs (this project, its dependencies, uv) built or fetched here, so the
# final stage installs offline and never holds a compiler or pip's cache.
FROM python:3.11-slim-bookworm AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY runtime ./runtime
COPY studio ./studio
RUN pip wheel --wheel-dir /wheels . "uv==0.13.9" "dumb-init==1.2.5.post1"

FROM python:3.11-slim-bookworm
# HOME is /tmp: MCP skills get HOME but not the other variables (the runtime filters their
# environment), so npm's and uv's caches and tools follow it into /tmp, which is writable whatever
# --user the container runs as (also with --read-only --tmpfs /tmp) and never in the workspace.
ENV HOME=/tmp \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    NPM_CONFIG_UPDATE_NOTIFIER=false \
    NPM_CONFIG_FUND=false

COPY --from=node /usr/local/bin/node /usr/local/bin/node
COPY --from=node /usr/local/lib/node_modules/npm /usr/local/lib/node_modules/npm
RUN ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm \
    && ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx \
    && node --version && npm --version

# The wheels are bind-mounted from the builder for this one step, so they add no layer.
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    pip install --no-cache-dir --no-index --find-links=/wheels \
        /wheels/perstack_studio-*.whl "uv==0.13.9" "dumb-init==1.2.5.post1" \
    && perstack --version && uvx --version && dumb-init --version

# Non-root, numeric so `runAsNonRoot` checks can verify it. Uid 1000 is the first user on most
# Linux hosts, so files written to the mounted workspace belong to them; others pass --user.
RUN groupadd --gid 1000 perstack \
    && useradd --no-create-home --home-dir /tmp --uid 1000 --gid 1000 \
        --shell /usr/sbin/nologin perstack \
    && mkdir /workspace \
    && chown 1000:1000 /workspace

USER 1000:1000
WORKDIR /workspace
# `start --web --host 0.0.0.0`: the studio in a browser (publish with -p 8000:8000).
EXPOSE 8000
# dumb-init as PID 1: it forwards SIGTERM (docker stop) to perstack, which as PID 1 itself would
# ignore it until Docker's SIGKILL, and reaps the skill processes' orphans.
ENTRYPOINT ["dumb-init", "--", "perstack"]
CMD ["--help"]
