# rbprof's container image: the single executable on a slim Debian, run as
# a sidecar that shares the PID namespace of a Ruby application.
#
#   docker build -t rbprof .
#
# scripts/build-image.sh builds the same image without a container engine;
# docs/container.md describes both.

# Rust from the official Rust image, Node 20 from the official Node image,
# both on Debian bookworm. The glibc of the build stage bounds the glibc
# that the executable needs: docs/container.md lists what it needs.
FROM rust:1-bookworm AS rust

FROM node:20-bookworm AS build
COPY --from=rust /usr/local/cargo /usr/local/cargo
COPY --from=rust /usr/local/rustup /usr/local/rustup
ENV CARGO_HOME=/usr/local/cargo \
    RUSTUP_HOME=/usr/local/rustup \
    PATH=/usr/local/cargo/bin:$PATH
WORKDIR /src
# The dependencies first, so that a change of the sources reuses this layer.
# --ignore-scripts skips the package's own prepare script, which builds
# sources that are not copied yet.
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY . .
# The addon (cargo), the TypeScript, then dist-sea/rbprof.
RUN npm run build && npm run build:sea

FROM debian:bookworm-slim
LABEL org.opencontainers.image.title="rbprof" \
      org.opencontainers.image.description="Sampling profiler for running Ruby (MRI) processes" \
      org.opencontainers.image.licenses="MIT"
COPY --from=build /src/dist-sea/rbprof /rbprof
# Reading another process's memory needs root or the target's user, and
# the SYS_PTRACE capability: docs/container.md says why.
USER 0:0
EXPOSE 6060
ENTRYPOINT ["/rbprof"]
CMD ["sidecar"]
