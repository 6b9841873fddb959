# syntax=docker/dockerfile:1
# Build: the same command CI runs (.ci/run), so what CI tests is what ships.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin payments-gateway

# Run: glibc and CA roots only, no shell, a numeric non-root user.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/payments-gateway /usr/local/bin/payments-gateway
USER 65532:65532
# gRPC (PaymentsService, health, reflection); HTTP (webhooks, metrics, health).
EXPOSE 50051 8080
ENTRYPOINT ["/usr/local/bin/payments-gateway"]
CMD ["serve"]
