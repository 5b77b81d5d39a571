# mxgate and the parts of the docker-compose lab (docker-compose.yml):
#   build   Go 1.26, a static binary (CGO_ENABLED=0)
#   mail    the organisation's mail server: Postfix's smtp-sink, writing every
#           message it takes to /var/mail/sink
#   client  swaks, to send mail into the lab
#   mxgate  the gateway (the last stage: what `docker build .` makes)
#
# The gateway runs as the unprivileged user mxgate (uid 10025). VRRP needs
# CAP_NET_RAW (VRRP and ARP sockets) and CAP_NET_ADMIN (the VIP), and port
# 25 CAP_NET_BIND_SERVICE. Docker gives added capabilities only to root
# (no ambient capabilities for other users), so the binary carries them as
# file capabilities: a process of any user that runs it gets exactly these
# three, and nothing else root has. A container running it must allow them
# (cap_add: [NET_ADMIN, NET_RAW]; NET_RAW and NET_BIND_SERVICE are in
# Docker's default set): without, the kernel refuses to run the binary
# ("operation not permitted"). Do not set no-new-privileges on it, which
# ignores file capabilities.

FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=docker
ARG COMMIT=
RUN CGO_ENABLED=0 go build -trimpath -buildvcs=false \
      -ldflags "-s -w -X main.version=${VERSION} -X main.commit=${COMMIT}" \
      -o /out/mxgate ./cmd/mxgate

FROM debian:bookworm-slim AS mail
RUN apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postfix >/dev/null \
 && rm -rf /var/lib/apt/lists/* \
 && install -d -o nobody -g nogroup /var/mail/sink
EXPOSE 25
# One file per message under /var/mail/sink/<day>/, as nobody.
CMD ["/usr/sbin/smtp-sink", "-u", "nobody", "-d", "/var/mail/sink/%Y%m%d/", "0.0.0.0:25", "256"]

FROM debian:bookworm-slim AS client
RUN apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends swaks >/dev/null \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --create-home client
USER client
CMD ["sleep", "infinity"]

FROM debian:bookworm-slim AS mxgate
RUN apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends ca-certificates libcap2-bin >/dev/null \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10025 --user-group --no-log-init --home-dir /var/lib/mxgate --shell /usr/sbin/nologin mxgate \
 && install -d -o mxgate -g mxgate -m 0750 /var/lib/mxgate
COPY --from=build /out/mxgate /usr/local/bin/mxgate
RUN setcap cap_net_admin,cap_net_raw,cap_net_bind_service=ep /usr/local/bin/mxgate
USER mxgate
WORKDIR /var/lib/mxgate
EXPOSE 25 8025 8026
ENTRYPOINT ["/usr/local/bin/mxgate"]
CMD ["serve", "-c", "/etc/mxgate/mxgate.yaml"]
