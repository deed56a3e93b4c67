//! The report's "Method and caveats" section: how the numbers were taken and what they mean.

pub(super) const METHOD: &str = "\
- Reproduce: `./scripts/bench.sh` (full, ≈ 20 min), `./scripts/bench.sh --quick` (≈ 7 min), \
`./scripts/bench.sh --only stompbox`; raw outcomes and logs in `target/bench/results/`; \
`./scripts/bench.sh --smoke` (also in `scripts/test.sh`) runs every scenario for a second \
against a Stompbox it starts. One scenario by hand: `target/release/stompbox-bench fanout \
--stomp 127.0.0.1:61613 --subscribers 100 --rate 10000 --duration 10 --json out.json` (see \
`stompbox-bench <scenario> --help`; every destination is a `{i}` template, e.g. \
`--topic-template '/topic/bench.{i}'`, `--peer-template '/queue/pair.{i}'`).
- \"lost\" is sent but not delivered by the end of the drain window (publishing time + up to \
15 s, or 3 s without progress): for a broker that queues for minutes (RabbitMQ under unbounded \
fan-out) it includes messages still queued, not only dropped ones. A publisher whose socket the \
broker holds shut (flow control) for 2 s past the window stops, and frames it could not write \
are not counted as sent (`publisher_blocked` in the JSON).
- One load generator (`stompbox-bench`, Rust/tokio, release build) drives every broker with the \
same scenario and the same STOMP 1.2 frames; only destinations and the prefetch header differ \
(`/topic/bench.{i}`, `/queue/pair.{i}` and `/queue/bench.ack.{i}` mean the same on all three; \
prefetch is `prefetch-count:100` on Stompbox and RabbitMQ, `activemq.prefetchSize:100` on \
ActiveMQ). Bodies are 128 bytes and carry `stream seq send-time`; latency is receive time minus \
send time on the same clock, in the same process.
- Brokers run one at a time on private loopback ports, each with `ulimit -n 20000`: Stompbox \
release build with defaults (`--max-connections 19900`), RabbitMQ (Debian) with `rabbitmq_stomp` \
and `rabbitmq_web_stomp` and defaults, ActiveMQ Classic (Debian) with a `stomp+nio` connector, \
`persistent=\"false\"` (Stompbox keeps messages in memory too) and a 2 GiB heap.
- **Shared, noisy machine**: 2 cores, shared with other engineers compiling in the same repo \
during the run, and the load generator runs on the same 2 cores as the broker. Absolute numbers \
are pessimistic and jittery; the ratios come from one run, back to back. The `generator CPU` \
column is the load generator's own user+sys time over the wall time (100% = one core): near \
200% the client, not the broker, is the bottleneck.
- Rate-limited publishers send on a 1 ms tick (tokio timer resolution) and stamp each message \
when it is encoded, so latency excludes the generator's own scheduling lag (no coordinated-\
omission correction). Unbounded publishers write batches of 32 SENDs as fast as TCP accepts them.
- Loss, duplication and reordering are counted exactly per stream (publisher × destination) with \
a bitset of sequence numbers; a run that is not clean is marked ⚠ and its errors listed. Under \
Stompbox's default slow-consumer policy a subscriber that falls 4,096 frames behind is \
disconnected (ERROR `slow consumer`), which shows up here as loss, by design.
- idle: RSS is `VmRSS` of the broker process (for RabbitMQ the `beam.smp` process) 2 s after the \
last SUBSCRIBE receipt, minus RSS before the first connection, divided by the connection count. \
Each connection CONNECTs with `heart-beat:10000,10000`, SUBSCRIBEs once and then heart-beats; \
source addresses spread over 127.x.y.z (10,000 per address), and each starts heart-beating as soon as its SUBSCRIBE is acknowledged. JVM and Erlang heaps make this a coarse number for the \
peers. The peers hold fewer connections than Stompbox (see parameters); bytes per connection is \
what is compared.
- reconnect: the generator closes all N connections at once (as a crashed node or network blip \
would), each client comes back after a uniform 0–1 s jitter, then exponential backoff with full \
jitter on failure, and counts as back once its SUBSCRIBE receipt arrives; then one message per \
client's topic checks every subscription is live again.
";
