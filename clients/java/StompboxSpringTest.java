// Spring's own STOMP client (spring-messaging 4.3: DefaultStompSession, StompEncoder/StompDecoder)
// against a real stompbox over TCP, through SocketTcpClient. Run by scripts/java-test.sh; exits
// non-zero when a check fails. Each check is named for the behaviour it proves.

import java.io.BufferedReader;
import java.io.File;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import org.springframework.messaging.simp.stomp.StompCommand;
import org.springframework.messaging.simp.stomp.StompFrameHandler;
import org.springframework.messaging.simp.stomp.StompHeaders;
import org.springframework.messaging.simp.stomp.StompSession;
import org.springframework.messaging.simp.stomp.StompSessionHandlerAdapter;
import org.springframework.scheduling.concurrent.ThreadPoolTaskScheduler;

public final class StompboxSpringTest {
    /** Bound on every wait for a frame: a missing frame fails its check instead of hanging. */
    private static final long WAIT_S = 5;
    private static final Pattern READY = Pattern.compile("^stompbox ready stomp=(\\S+):(\\d+) http=.*");

    /** A received MESSAGE (or ERROR): its headers and its body. */
    record Frame(StompHeaders headers, String body) {}

    /** Everything a session's handler saw: the session once CONNECTED, and ERROR frames. */
    static final class Handler extends StompSessionHandlerAdapter {
        final CompletableFuture<StompHeaders> connected = new CompletableFuture<>();
        final Inbox errors = new Inbox();

        @Override
        public void afterConnected(StompSession session, StompHeaders headers) {
            connected.complete(headers);
        }

        @Override
        public java.lang.reflect.Type getPayloadType(StompHeaders headers) {
            return errors.getPayloadType(headers);
        }

        @Override
        public void handleFrame(StompHeaders headers, Object payload) {
            errors.handleFrame(headers, payload);
        }

        @Override
        public void handleException(StompSession s, StompCommand c, StompHeaders h, byte[] p, Throwable e) {
            e.printStackTrace();
        }
    }

    /** Frames of one subscription, in arrival order. */
    static final class Inbox implements StompFrameHandler {
        final BlockingQueue<Frame> frames = new LinkedBlockingQueue<>();

        @Override
        public java.lang.reflect.Type getPayloadType(StompHeaders headers) {
            return byte[].class;
        }

        @Override
        public void handleFrame(StompHeaders headers, Object payload) {
            frames.add(new Frame(headers, text(payload)));
        }

        Frame next() throws InterruptedException {
            Frame f = frames.poll(WAIT_S, TimeUnit.SECONDS);
            check(f != null, "no MESSAGE within " + WAIT_S + " s");
            return f;
        }
    }

    /**
     * Bodies travel as bytes: Spring's default SimpleMessageConverter passes them through
     * whatever their content-type (its StringMessageConverter takes only text/plain).
     */
    static String text(Object payload) {
        return new String((byte[]) payload, StandardCharsets.UTF_8);
    }

    static byte[] bytes(String body) {
        return body.getBytes(StandardCharsets.UTF_8);
    }

    private static Process broker;
    private static SocketTcpClient tcp;
    private static SpringClient client;
    private static final List<String> failures = new ArrayList<>();

    public static void main(String[] args) throws Exception {
        Path dir = Files.createTempDirectory("stompbox-java-");
        String bin = System.getenv().getOrDefault("STOMPBOX_BIN", "target/debug/stompbox");
        startBroker(bin, dir);
        ThreadPoolTaskScheduler scheduler = new ThreadPoolTaskScheduler();
        scheduler.setPoolSize(2);
        scheduler.setDaemon(true);
        scheduler.afterPropertiesSet();
        client = new SpringClient(tcp);
        client.setTaskScheduler(scheduler);
        client.setReceiptTimeLimit(TimeUnit.SECONDS.toMillis(WAIT_S));
        try {
            run("connect_with_credentials_names_the_principal", StompboxSpringTest::connectWithCredentials);
            run("wrong_passcode_gets_error_authentication_failed", StompboxSpringTest::wrongPasscode);
            run("heart_beats_both_ways_keep_an_idle_session_open", StompboxSpringTest::heartBeats);
            run("subscribe_and_send_with_headers_get_receipts", StompboxSpringTest::sendWithHeaders);
            run("client_individual_ack_and_nack_redelivers", StompboxSpringTest::clientIndividualAck);
            run("client_ack_is_cumulative", StompboxSpringTest::clientAckCumulative);
            run("chat_round_trip_send_receipt_delivery", StompboxSpringTest::chatRoundTrip);
            run("relay_style_system_session_sends_on_behalf_of_users", StompboxSpringTest::relayStyle);
        } finally {
            broker.destroy();
            broker.waitFor(10, TimeUnit.SECONDS);
            tcp.shutdown();
        }
        if (!failures.isEmpty()) {
            System.out.println("FAILED: " + failures);
            System.exit(1);
        }
        System.out.println("all Spring STOMP client checks passed");
        System.exit(0);
    }

    interface Check {
        void run() throws Exception;
    }

    private static void run(String name, Check check) {
        try {
            check.run();
            System.out.println("ok   " + name);
        } catch (Throwable e) {
            System.out.println("FAIL " + name + ": " + e);
            failures.add(name);
        }
    }

    static void check(boolean condition, String what) {
        if (!condition) throw new AssertionError(what);
    }

    static void equal(Object want, Object got, String what) {
        check(want.equals(got), what + ": want " + want + ", got " + got);
    }

    /** A users file for alice, bob and system (passwords `<name>-pw`), made by the broker itself. */
    private static void startBroker(String bin, Path dir) throws Exception {
        StringBuilder users = new StringBuilder("[users]\n");
        for (String user : new String[] {"alice", "bob", "system"}) {
            Process p = new ProcessBuilder(bin, "hash-password", "--password", user + "-pw")
                    .redirectErrorStream(true).start();
            String hash = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).trim();
            check(p.waitFor() == 0, "hash-password failed: " + hash);
            users.append(user).append(" = \"").append(hash).append("\"\n");
        }
        Path usersFile = dir.resolve("users.toml");
        Files.writeString(usersFile, users);
        ProcessBuilder pb = new ProcessBuilder(bin, "--stomp-listen", "127.0.0.1:0", "--http-listen",
                "127.0.0.1:0", "--data-dir", dir.resolve("data").toString(), "--users-file",
                usersFile.toString());
        Map<String, String> env = pb.environment();
        env.keySet().removeIf(k -> k.startsWith("STOMPBOX_"));
        pb.redirectError(new File(dir.resolve("broker.log").toString()));
        broker = pb.start();
        BufferedReader out = new BufferedReader(new InputStreamReader(broker.getInputStream(), StandardCharsets.UTF_8));
        CompletableFuture<Matcher> ready = new CompletableFuture<>();
        Thread reader = new Thread(() -> {
            try {
                String line;
                while ((line = out.readLine()) != null) {
                    Matcher m = READY.matcher(line.trim());
                    if (m.matches()) ready.complete(m);
                }
            } catch (Exception ignored) {
                // the broker exited; the ready wait below reports it
            }
        });
        reader.setDaemon(true);
        reader.start();
        Matcher m = ready.get(30, TimeUnit.SECONDS);
        tcp = new SocketTcpClient(m.group(1), Integer.parseInt(m.group(2)));
    }

    /** A CONNECTed session; the handler holds what it saw. */
    record Session(StompSession stomp, Handler handler, StompHeaders connected) {}

    static Session connect(String login, String passcode, long[] heartbeat) throws Exception {
        return connect(login, passcode, heartbeat, null);
    }

    /** `host` is the CONNECT header Spring's relay fills from its virtual host setting. */
    static Session connect(String login, String passcode, long[] heartbeat, String host) throws Exception {
        StompHeaders headers = new StompHeaders();
        if (host != null) headers.setHost(host);
        headers.setLogin(login);
        headers.setPasscode(passcode);
        headers.setHeartbeat(heartbeat);
        Handler handler = new Handler();
        StompSession session = client.connect(headers, handler).get(WAIT_S, TimeUnit.SECONDS);
        session.setAutoReceipt(true);
        return new Session(session, handler, handler.connected.get(WAIT_S, TimeUnit.SECONDS));
    }

    static Session connect(String user) throws Exception {
        return connect(user, user + "-pw", new long[] {0, 0});
    }

    /** Waits for the RECEIPT of a frame sent with auto-receipt on. */
    static void receipted(StompSession.Receiptable r) throws Exception {
        CompletableFuture<Void> got = new CompletableFuture<>();
        r.addReceiptTask(() -> got.complete(null));
        r.addReceiptLostTask(() -> got.completeExceptionally(new AssertionError("receipt lost: " + r.getReceiptId())));
        check(r.getReceiptId() != null, "auto-receipt set no receipt header");
        got.get(WAIT_S + 1, TimeUnit.SECONDS);
    }

    static Inbox subscribe(Session s, String destination, String ack) throws Exception {
        StompHeaders headers = new StompHeaders();
        headers.setDestination(destination);
        if (ack != null) headers.setAck(ack);
        Inbox inbox = new Inbox();
        receipted(s.stomp().subscribe(headers, inbox));
        return inbox;
    }

    static void send(Session s, String destination, String body) throws Exception {
        receipted(s.stomp().send(destination, bytes(body)));
    }

    static String unique() {
        return UUID.randomUUID().toString().substring(0, 8);
    }

    private static void connectWithCredentials() throws Exception {
        Session s = connect("alice");
        equal("alice", s.connected().getFirst("user-name"), "CONNECTED user-name");
        equal("1.2", s.connected().getFirst("version"), "negotiated version (Spring offers 1.1,1.2)");
        check(s.connected().getFirst("server").startsWith("stompbox/"), "server header");
        s.stomp().disconnect();
    }

    private static void wrongPasscode() throws Exception {
        StompHeaders headers = new StompHeaders();
        headers.setLogin("alice");
        headers.setPasscode("wrong");
        Handler handler = new Handler();
        client.connect(headers, handler);
        Frame error = handler.errors.next();
        equal("authentication failed", error.headers().getFirst("message"), "ERROR message");
        check(!handler.connected.isDone(), "CONNECTED despite a wrong passcode");
    }

    private static void heartBeats() throws Exception {
        int before = tcp.heartbeatsRead.get();
        Session s = connect("alice", "alice-pw", new long[] {1000, 1000});
        equal("1000,1000", s.connected().getFirst("heart-beat"), "CONNECTED heart-beat");
        // Idle for three intervals: the broker closes a session silent for 2 s (grace 2.0), so
        // only Spring's heart-beats keep it; the broker's keep Spring's read check quiet.
        Thread.sleep(3000);
        check(s.stomp().isConnected(), "session closed while idle with heart-beats on");
        String dest = "/topic/hb." + unique();
        Inbox inbox = subscribe(s, dest, null);
        send(s, dest, "still here");
        equal("still here", inbox.next().body(), "a message after the idle time");
        check(tcp.heartbeatsRead.get() - before >= 2, "fewer than 2 heart-beats from the broker in 3 s");
        s.stomp().disconnect();
    }

    private static void sendWithHeaders() throws Exception {
        Session alice = connect("alice");
        Session bob = connect("bob");
        String dest = "/topic/spring." + unique();
        Inbox inbox = subscribe(bob, dest, null);
        StompHeaders headers = new StompHeaders();
        headers.setDestination(dest);
        headers.setContentType(org.springframework.util.MimeTypeUtils.APPLICATION_JSON);
        headers.set("x-trace-id", "trace-42");
        headers.set("user-id", "mallory");
        receipted(alice.stomp().send(headers, bytes("{\"hello\":\"bob\"}")));
        Frame m = inbox.next();
        equal("{\"hello\":\"bob\"}", m.body(), "body");
        equal("trace-42", m.headers().getFirst("x-trace-id"), "application header");
        equal("application/json", m.headers().getContentType().toString(), "content-type");
        equal("alice", m.headers().getFirst("user-id"), "user-id is the sender's principal, not the header sent");
        check(m.headers().getMessageId() != null, "message-id header");
        alice.stomp().disconnect();
        bob.stomp().disconnect();
    }

    private static void clientIndividualAck() throws Exception {
        Session s = connect("alice");
        String queue = "/queue/spring-ack." + unique();
        Inbox inbox = subscribe(s, queue, "client-individual");
        send(s, queue, "one");
        send(s, queue, "two");
        Frame one = inbox.next();
        Frame two = inbox.next();
        equal("one", one.body(), "first");
        equal("two", two.body(), "second");
        receipted(s.stomp().acknowledge(one.headers().getAck(), true));
        receipted(s.stomp().acknowledge(two.headers().getAck(), false));
        Frame again = inbox.next();
        equal("two", again.body(), "the NACKed message comes back");
        equal("true", again.headers().getFirst("redelivered"), "redelivered header");
        receipted(s.stomp().acknowledge(again.headers().getAck(), true));
        check(inbox.frames.poll(500, TimeUnit.MILLISECONDS) == null, "an ACKed message came back");
        s.stomp().disconnect();
    }

    private static void clientAckCumulative() throws Exception {
        String queue = "/queue/spring-cumulative." + unique();
        Session s = connect("alice");
        Inbox inbox = subscribe(s, queue, "client");
        for (String body : new String[] {"a", "b", "c"}) send(s, queue, body);
        inbox.next();
        Frame b = inbox.next();
        Frame c = inbox.next();
        // ACK of b covers a; c stays unacknowledged and is redelivered after the session ends.
        receipted(s.stomp().acknowledge(b.headers().getAck(), true));
        s.stomp().disconnect();
        Session again = connect("alice");
        Inbox next = subscribe(again, queue, "client");
        Frame redelivered = next.next();
        equal(c.body(), redelivered.body(), "only the unacknowledged message is redelivered");
        check(next.frames.poll(500, TimeUnit.MILLISECONDS) == null, "an acknowledged message was redelivered");
        again.stomp().disconnect();
    }

    private static void chatRoundTrip() throws Exception {
        Session alice = connect("alice");
        Session bob = connect("bob");
        Inbox bobMessages = subscribe(bob, "/user/queue/messages", "client-individual");
        Inbox aliceReceipts = subscribe(alice, "/user/queue/receipts", null);
        String clientMessageId = "spring-" + unique();
        StompHeaders headers = new StompHeaders();
        headers.setDestination("/app/chat.send");
        headers.setContentType(org.springframework.util.MimeTypeUtils.APPLICATION_JSON);
        // The RECEIPT of a chat SEND comes only once the message is durably stored.
        receipted(alice.stomp().send(headers, bytes(
                "{\"recipientId\":\"bob\",\"content\":\"hi from Spring\",\"clientMessageId\":\"" + clientMessageId + "\"}")));
        Frame m = bobMessages.next();
        check(m.body().contains("\"senderId\":\"alice\""), "senderId alice: " + m.body());
        check(m.body().contains("\"content\":\"hi from Spring\""), "content: " + m.body());
        check(m.body().contains(clientMessageId), "clientMessageId: " + m.body());
        String messageId = m.headers().getMessageId();
        check(m.body().contains("\"messageId\":\"" + messageId + "\""), "message-id header is the body's messageId");
        // Bob's ACK is DELIVERED for alice.
        receipted(bob.stomp().acknowledge(m.headers().getAck(), true));
        Frame delivered = aliceReceipts.next();
        check(delivered.body().contains("\"status\":\"DELIVERED\""), "DELIVERED receipt: " + delivered.body());
        check(delivered.body().contains(messageId), "DELIVERED names the message: " + delivered.body());
        alice.stomp().disconnect();
        bob.stomp().disconnect();
    }

    /**
     * What Spring's enableStompBrokerRelay does on the wire: one shared "system" session sends
     * for the application, to destinations its UserDestinationMessageHandler resolved per
     * session (`/queue/<name>-user<sessionId>`), to topics, and to Stompbox's own `/user/<name>`
     * destinations. The broker stamps `user-id: system`: a system session cannot pass itself off
     * as a user.
     */
    private static void relayStyle() throws Exception {
        Session system = connect("system", "system-pw", new long[] {10000, 10000}, "spring-vhost");
        Session alice = connect("alice");
        String resolved = "/queue/notifications-user" + unique();
        Inbox perSession = subscribe(alice, resolved, null);
        Inbox perUser = subscribe(alice, "/user/queue/notifications", null);
        String topic = "/topic/broadcast." + unique();
        Inbox broadcast = subscribe(alice, topic, null);

        send(system, resolved, "to this session");
        send(system, "/user/alice/queue/notifications", "to every alice session");
        StompHeaders forged = new StompHeaders();
        forged.setDestination(topic);
        forged.set("user-id", "alice");
        receipted(system.stomp().send(forged, bytes("to everyone")));

        Frame a = perSession.next();
        equal("to this session", a.body(), "resolved per-session queue");
        equal("system", a.headers().getFirst("user-id"), "user-id on a relayed message");
        Frame b = perUser.next();
        equal("to every alice session", b.body(), "/user destination");
        equal("/user/queue/notifications", b.headers().getDestination(), "destination as subscribed");
        Frame c = broadcast.next();
        equal("to everyone", c.body(), "topic");
        equal("system", c.headers().getFirst("user-id"), "a forged user-id is replaced");
        system.stomp().disconnect();
        alice.stomp().disconnect();
    }
}
