// Spring's STOMP client (DefaultStompSession) needs a TcpOperations<byte[]> to run on. Spring 4.3
// ships one on Reactor 2 (Reactor2TcpClient), which Debian does not build; this is the minimal
// adapter over java.net.Socket: one reader thread per connection feeding Spring's StompDecoder,
// writes through Spring's StompEncoder, and the read/write inactivity callbacks that drive
// DefaultStompSession's heart-beats.

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.ByteBuffer;
import java.util.List;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;

import org.springframework.messaging.Message;
import org.springframework.messaging.simp.stomp.BufferingStompDecoder;
import org.springframework.messaging.simp.stomp.StompDecoder;
import org.springframework.messaging.simp.stomp.StompEncoder;
import org.springframework.messaging.simp.stomp.StompHeaderAccessor;
import org.springframework.messaging.tcp.ReconnectStrategy;
import org.springframework.messaging.tcp.TcpConnection;
import org.springframework.messaging.tcp.TcpConnectionHandler;
import org.springframework.messaging.tcp.TcpOperations;
import org.springframework.util.concurrent.ListenableFuture;
import org.springframework.util.concurrent.SettableListenableFuture;

final class SocketTcpClient implements TcpOperations<byte[]> {
    /** Spring's decoder refuses to buffer more than this of one frame (its own default is 64 KiB). */
    private static final int MAX_FRAME = 1024 * 1024;

    private final String host;
    private final int port;
    private final ScheduledExecutorService timers = Executors.newScheduledThreadPool(1, r -> {
        Thread t = new Thread(r, "tcp-inactivity");
        t.setDaemon(true);
        return t;
    });
    /** Heart-beats (a lone EOL) read from the broker, over every connection: the test checks them. */
    final AtomicInteger heartbeatsRead = new AtomicInteger();

    SocketTcpClient(String host, int port) {
        this.host = host;
        this.port = port;
    }

    @Override
    public ListenableFuture<Void> connect(TcpConnectionHandler<byte[]> handler) {
        SettableListenableFuture<Void> connected = new SettableListenableFuture<>();
        Socket socket = new Socket();
        try {
            socket.setTcpNoDelay(true);
            socket.connect(new InetSocketAddress(host, port), 5000);
        } catch (IOException e) {
            handler.afterConnectFailure(e);
            connected.setException(e);
            return connected;
        }
        Connection connection = new Connection(socket);
        handler.afterConnected(connection);
        Thread reader = new Thread(() -> connection.read(handler), "tcp-reader");
        reader.setDaemon(true);
        reader.start();
        connected.set(null);
        return connected;
    }

    @Override
    public ListenableFuture<Void> connect(TcpConnectionHandler<byte[]> handler, ReconnectStrategy strategy) {
        return connect(handler);
    }

    @Override
    public ListenableFuture<Void> shutdown() {
        timers.shutdownNow();
        SettableListenableFuture<Void> done = new SettableListenableFuture<>();
        done.set(null);
        return done;
    }

    private final class Connection implements TcpConnection<byte[]> {
        private final Socket socket;
        private final OutputStream out;
        private final StompEncoder encoder = new StompEncoder();
        private final AtomicLong lastRead = new AtomicLong(System.nanoTime());
        private final AtomicLong lastWrite = new AtomicLong(System.nanoTime());
        private volatile ScheduledFuture<?> readCheck;
        private volatile ScheduledFuture<?> writeCheck;

        Connection(Socket socket) {
            this.socket = socket;
            try {
                this.out = socket.getOutputStream();
            } catch (IOException e) {
                throw new IllegalStateException(e);
            }
        }

        void read(TcpConnectionHandler<byte[]> handler) {
            BufferingStompDecoder decoder = new BufferingStompDecoder(new StompDecoder(), MAX_FRAME);
            byte[] buf = new byte[16 * 1024];
            try (InputStream in = socket.getInputStream()) {
                int n;
                while ((n = in.read(buf)) > 0) {
                    lastRead.set(System.nanoTime());
                    List<Message<byte[]>> messages = decoder.decode(ByteBuffer.wrap(buf, 0, n));
                    for (Message<byte[]> m : messages) {
                        if (StompHeaderAccessor.getAccessor(m, StompHeaderAccessor.class).isHeartbeat()) {
                            heartbeatsRead.incrementAndGet();
                        }
                        handler.handleMessage(m);
                    }
                }
            } catch (IOException e) {
                if (!socket.isClosed()) handler.handleFailure(e);
            } catch (RuntimeException e) {
                handler.handleFailure(e);
            } finally {
                cancelChecks();
                handler.afterConnectionClosed();
            }
        }

        @Override
        public ListenableFuture<Void> send(Message<byte[]> message) {
            SettableListenableFuture<Void> sent = new SettableListenableFuture<>();
            byte[] bytes = encoder.encode(message);
            try {
                synchronized (out) {
                    out.write(bytes);
                    out.flush();
                }
                lastWrite.set(System.nanoTime());
                sent.set(null);
            } catch (IOException e) {
                sent.setException(e);
            }
            return sent;
        }

        @Override
        public void onReadInactivity(Runnable task, long ms) {
            readCheck = every(ms, lastRead, task);
        }

        @Override
        public void onWriteInactivity(Runnable task, long ms) {
            writeCheck = every(ms, lastWrite, task);
        }

        /** Runs `task` whenever `last` is more than `ms` old, checking ten times per interval. */
        private ScheduledFuture<?> every(long ms, AtomicLong last, Runnable task) {
            long step = Math.max(1, ms / 10);
            return timers.scheduleAtFixedRate(() -> {
                if (System.nanoTime() - last.get() >= TimeUnit.MILLISECONDS.toNanos(ms)) {
                    last.set(System.nanoTime());
                    task.run();
                }
            }, step, step, TimeUnit.MILLISECONDS);
        }

        private void cancelChecks() {
            if (readCheck != null) readCheck.cancel(false);
            if (writeCheck != null) writeCheck.cancel(false);
        }

        @Override
        public void close() {
            cancelChecks();
            try {
                socket.close();
            } catch (IOException ignored) {
                // closing: nothing left to tell anyone
            }
        }
    }
}
