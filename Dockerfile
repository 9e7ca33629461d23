# zkfle container image: one ensemble member per container.
#
#   docker build -t zkfle .
#   docker run -d --name zk1 --network host \
#     -v /etc/zkfle/zoo.cfg:/etc/zkfle/zoo.cfg:ro \
#     -v zk1-data:/var/lib/zkfle \
#     zkfle run /etc/zkfle/zoo.cfg --myid 1
#
# zoo.cfg is mounted read-only at /etc/zkfle/zoo.cfg and should say
# dataDir=/var/lib/zkfle (a volume: it holds myid and the epoch files that
# must survive restarts). Without --myid the id is read from
# /var/lib/zkfle/myid, as ZooKeeper does. The process runs as the
# unprivileged user zkfle (uid 10001); exit status 2 means the
# configuration was refused (see the message), so do not restart on it.

# ---- build ----
FROM rust:1-bookworm AS build
WORKDIR /src
# Manifests first, so the dependency download is cached across source
# edits; the bench targets are declared in Cargo.toml, so cargo wants their
# files before it reads the manifest.
COPY Cargo.toml Cargo.lock ./
COPY benches ./benches
RUN cargo fetch --locked
COPY src ./src
RUN cargo build --profile dist --locked --bin zkfle \
 && strip target/dist/zkfle

# ---- run ----
FROM debian:bookworm-slim
RUN useradd --system --uid 10001 --user-group \
        --home-dir /var/lib/zkfle --shell /usr/sbin/nologin zkfle \
 && install -d -o zkfle -g zkfle -m 0750 /var/lib/zkfle \
 && install -d -m 0755 /etc/zkfle
COPY --from=build /src/target/dist/zkfle /usr/local/bin/zkfle
USER zkfle
VOLUME ["/var/lib/zkfle"]
# client (four-letter words), quorum, election, metrics: ZooKeeper's
# customary ports; the real ones are whatever zoo.cfg says.
EXPOSE 2181 2888 3888 7000
ENV RUST_LOG=info
# `zkfle status` exits 0 only while the peer serves (Mode: leader,
# follower or observer); it needs only srvr, which is always enabled.
HEALTHCHECK --interval=10s --timeout=10s --start-period=30s \
    CMD ["/usr/local/bin/zkfle", "status", "/etc/zkfle/zoo.cfg"]
ENTRYPOINT ["/usr/local/bin/zkfle"]
CMD ["run", "/etc/zkfle/zoo.cfg"]
