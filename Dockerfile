# pysandbox image: one image for every environment. At startup the server probes what the
# container may do and picks the strongest isolation mode that works (full > namespaces >
# rlimit); GET /healthz reports it. What a container is allowed to do is decided by how it is
# run (docker/podman flags, the Kubernetes securityContext, the Cloud Run execution
# environment), not by the image: see k8s/README.md and cloudrun/README.md.
#
#   docker build -t pysandbox .                        # BUILD=local (default)
#   docker build -t pysandbox --build-arg BUILD=cloud .
#
# BUILD only sets the default isolation floor (PYSANDBOX_MIN_ISOLATION, --min-isolation), which
# every deployment can override with the environment variable:
#   local -> rlimit:     a plain `docker run` on a laptop starts whatever the engine allows and
#                        says which mode it got in /healthz (the convenient default).
#   cloud -> namespaces: fail closed. A deployment whose securityContext silently lost the
#                        rights for namespaces refuses to start instead of running untrusted code
#                        with weaker isolation. The gVisor variants (Cloud Run gen1, GKE Sandbox)
#                        set PYSANDBOX_MIN_ISOLATION=rlimit explicitly: there gVisor itself is
#                        the outer boundary.

# (No default on the ARG itself: buildah 1.28 does not match a stage named through an ARG
# default, only through ${BUILD:-local}; BuildKit accepts both.)
ARG BUILD

############################################################################ build stage
FROM debian:bookworm-slim AS build
ARG DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      cmake g++ make pkg-config \
      libboost1.81-dev libboost-json1.81-dev libseccomp-dev libcgroup-dev libpython3.11-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# Release, only the server target, no tests: this stage is on the CI's clock.
RUN cmake -S . -B /build -DCMAKE_BUILD_TYPE=Release -DPYSANDBOX_BUILD_TESTS=OFF \
 && cmake --build /build --target pysandboxd -j"$(nproc)" \
 && cmake --install /build --prefix /opt/pysandbox --strip \
 && test -x /opt/pysandbox/bin/pysandboxd \
 && test -x /opt/pysandbox/bin/pysandbox-init \
 && test -f /opt/pysandbox/share/pysandbox/_pysandbox_zygote.so \
 && test -f /opt/pysandbox/share/pysandbox/zygote.py \
 && test -f /opt/pysandbox/share/pysandbox/runner.py \
 && test -f /opt/pysandbox/share/pysandbox/default.policy

############################################################################## web stage
# The web IDE (web/): Debian's node and npm, packages from the npm registry by the lockfile.
FROM debian:bookworm-slim AS web
ARG DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
 && apt-get install -y --no-install-recommends nodejs npm ca-certificates \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /web
# Dependencies first: a source edit reuses the installed packages.
COPY web/package.json web/package-lock.json ./
# Behind a TLS-intercepting proxy (corporate egress, CI sandboxes) the registry's certificate
# does not verify against Debian's CA list; the lockfile's sha512 integrity hashes, which npm ci
# always checks, then still pin every package's content, so only that failure is retried
# without TLS verification (and says so).
RUN if ! npm ci --no-audit --no-fund --loglevel=error 2>/tmp/npm-ci.err; then \
      cat /tmp/npm-ci.err >&2; \
      grep -Eq 'SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_GET_ISSUER_CERT_LOCALLY' /tmp/npm-ci.err || exit 1; \
      echo "web: TLS to the registry is intercepted; installing with the lockfile's integrity as the check" >&2; \
      npm ci --no-audit --no-fund --loglevel=error --strict-ssl=false; \
    fi
COPY web/ ./
RUN PYSANDBOX_WEB_OUT_DIR=/out npm run build && test -f /out/index.html

########################################################################## runtime stage
FROM debian:bookworm-slim AS runtime
ARG DEBIAN_FRONTEND=noninteractive
# The interpreter the sandboxes run (Debian's, with numpy and pandas) and the server's shared
# libraries. No curl: the HEALTHCHECK uses python3, which is here anyway. The `pysandbox`
# account (10001) is for running the server without root (rlimit mode only, see below).
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      python3 python3-numpy python3-pandas \
      libseccomp2 libcgroup2 libboost-json1.81.0 \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb \
 && groupadd --system --gid 10001 pysandbox \
 && useradd --system --uid 10001 --gid 10001 --home-dir /nonexistent --no-create-home \
      --shell /usr/sbin/nologin pysandbox

COPY --from=build /opt/pysandbox/bin/pysandboxd /usr/local/bin/pysandboxd
# Every sandbox's init (static; found next to pysandboxd), and the data directory: the runner, the
# seccomp policies, and the warm pool's zygote bootstrap with its native module.
COPY --from=build /opt/pysandbox/bin/pysandbox-init /usr/local/bin/pysandbox-init
COPY --from=build /opt/pysandbox/share/pysandbox/ /usr/local/share/pysandbox/
# Served at / (--web on, the default).
COPY --from=web /out/ /usr/local/share/pysandbox/web/

# Fail the build, not the first request, if a shared library is missing or the binary does not
# start.
RUN ! ldd /usr/local/bin/pysandboxd /usr/local/share/pysandbox/_pysandbox_zygote.so \
      | grep -F 'not found' \
 && /usr/local/bin/pysandboxd --help >/dev/null \
 && test -f /usr/local/share/pysandbox/web/index.html \
 && /usr/bin/python3 -c 'import numpy, pandas'

# PORT (Cloud Run sets it) is honoured only while PYSANDBOX_PORT is unset, so the image sets
# neither: the server's default port is 8080.
ENV PYSANDBOX_LISTEN=0.0.0.0 \
    PYSANDBOX_PYTHON=/usr/bin/python3

# Root by default: in `full` and `namespaces` mode the server writes uid_map/gid_map for the
# unprivileged host uid range --uid-base.. (needs CAP_SETUID/CAP_SETGID) and gives every sandbox
# its own uid. A `USER` line would forbid that. Where only `rlimit` mode is possible (gVisor),
# `--user 10001:10001` / runAsUser: 10001 works too, at a price: every sandbox then runs under
# the server's own uid (see k8s/README.md).
EXPOSE 8080
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s --retries=3 \
  CMD ["/usr/bin/python3", "-I", "-S", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % (os.environ.get('PYSANDBOX_PORT') or os.environ.get('PORT') or '8080'), timeout=2)"]
ENTRYPOINT ["/usr/local/bin/pysandboxd"]

# The default isolation floor per BUILD (see the top of this file). A stage per value, because
# a Dockerfile has no conditional ENV; an unknown BUILD fails here (no stage "runtime-<typo>").
FROM runtime AS runtime-local
ENV PYSANDBOX_BUILD=local PYSANDBOX_MIN_ISOLATION=rlimit

FROM runtime AS runtime-cloud
ENV PYSANDBOX_BUILD=cloud PYSANDBOX_MIN_ISOLATION=namespaces

FROM runtime-${BUILD:-local}
