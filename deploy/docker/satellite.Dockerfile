# syntax=docker/dockerfile:1
# Satellite image. Build from the repository root, which is the build context:
#   docker build -f deploy/docker/satellite.Dockerfile -t edge/satellite:0.1.0 .

# The build stage installs the whole workspace, because pnpm resolves workspace packages
# (@edge/contract, @edge/oci, @edge/registry) from their sources in the monorepo.
FROM node:20.20.2-bookworm-slim AS build
ENV CI=true
RUN npm install --global pnpm@10.34.9
WORKDIR /src
# `pnpm fetch` needs only the lockfile, so the dependency download stays cached until the
# lockfile changes.
COPY pnpm-lock.yaml pnpm-workspace.yaml package.json ./
RUN pnpm fetch --frozen-lockfile
COPY . .
RUN pnpm install --frozen-lockfile --offline
# The trailing `...` builds the satellite and the workspace packages it depends on.
RUN pnpm --filter "@edge/satellite..." run build
# A production-only folder: dist and node_modules without devDependencies.
RUN pnpm --filter @edge/satellite deploy --prod --legacy /out \
  && rm -rf /out/src /out/test /out/tsconfig.build.json \
  && cp deploy/docker/healthcheck.mjs /out/healthcheck.mjs

FROM node:20.20.2-bookworm-slim
# The metrics server listens on all interfaces in the container, so that Kubernetes probes
# and Prometheus reach /healthz, /readyz and /metrics (the daemon's own default is loopback).
ENV NODE_ENV=production \
    SATELLITE_DATA_DIR=/var/lib/satellite \
    SATELLITE_REGISTRY_LISTEN=0.0.0.0:5050 \
    SATELLITE_METRICS_LISTEN=0.0.0.0:9105
WORKDIR /app
# The application files stay owned by root, so the service user cannot change them.
COPY --from=build /out /app
# uid 1000 is the `node` user of the official Node images; a numeric USER lets Kubernetes
# verify runAsNonRoot.
RUN mkdir -p /var/lib/satellite && chown 1000:1000 /var/lib/satellite
USER 1000:1000
# Identity, desired state, partial downloads and the embedded registry's store.
VOLUME ["/var/lib/satellite"]
# 5050: embedded registry (pull only); 9105: /healthz, /readyz, /metrics.
EXPOSE 5050 9105
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "/app/healthcheck.mjs", "satellite"]
# Exec form, so SIGTERM reaches Node and the daemon's graceful shutdown runs.
CMD ["node", "dist/main.js", "run"]
