# syntax=docker/dockerfile:1
# Ground Control image. Build from the repository root, which is the build context:
#   docker build -f deploy/docker/ground-control.Dockerfile -t edge/ground-control:0.1.0 .

# The build stage installs the whole workspace, because pnpm resolves workspace packages
# (@edge/contract, @edge/oci) from their sources in the monorepo.
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
# The trailing `...` builds Ground Control and the workspace packages it depends on.
RUN pnpm --filter "@edge/ground-control..." run build
# A production-only folder: dist, migrations, and node_modules without devDependencies.
RUN pnpm --filter @edge/ground-control deploy --prod --legacy /out \
  && rm -rf /out/src /out/test /out/tsconfig.build.json \
  && cp deploy/docker/healthcheck.mjs /out/healthcheck.mjs

FROM node:20.20.2-bookworm-slim
ENV NODE_ENV=production \
    GC_HOST=0.0.0.0 \
    GC_PORT=8080 \
    GC_DATA_DIR=/var/lib/ground-control
WORKDIR /app
# The application files stay owned by root, so the service user cannot change them.
COPY --from=build /out /app
# uid 1000 is the `node` user of the official Node images; a numeric USER lets Kubernetes
# verify runAsNonRoot.
RUN mkdir -p /var/lib/ground-control && chown 1000:1000 /var/lib/ground-control
USER 1000:1000
# With DATABASE_URL unset, Ground Control keeps PGlite here; it always keeps the generated
# encryption key (when GC_ENCRYPTION_KEY is unset) and the initial admin password file here.
VOLUME ["/var/lib/ground-control"]
EXPOSE 8080
# The first start on PGlite applies the migrations, which took about 20 s on a 2-core machine.
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 \
  CMD ["node", "/app/healthcheck.mjs", "ground-control"]
# Exec form, so SIGTERM reaches Node and the graceful shutdown runs.
CMD ["node", "dist/main.js"]
