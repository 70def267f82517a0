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
# EXTRAS: optional extras of the package, e.g. `--build-arg EXTRAS=scale` for Ray workers and
# jobs in an object store (docs/scale-out.md); empty by default.
ARG EXTRAS=""
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY runtime ./runtime
COPY studio ./studio
RUN pip wheel --wheel-dir /wheels ".${EXTRAS:+[$EXTRAS]}" "uv==0.13.9" "dumb-init==1.2.5.post1"

FROM python:3.11-slim-bookworm
ARG EXTRAS=""
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
# The extras are named on the wheel's path (pip's `file.whl[extra]`), after the glob has matched.
# DL3013 (pin versions): what is installed is the builder's wheel files, pinned by being them.
# hadolint ignore=DL3013
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    wheel="$(echo /wheels/perstack_studio-*.whl)" \
    && pip install --no-cache-dir --no-index --find-links=/wheels \
        "${wheel}${EXTRAS:+[$EXTRAS]}" "uv==0.13.9" "dumb-init==1.2.5.post1" \
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
