// Spring's STOMP client over SocketTcpClient: StompClientSupport (heart-beat defaults, message
// converter, task scheduler, receipt time limit) plus the one method Spring's own TCP client
// adds, connect, which hands the session to the transport as its connection handler.

import org.springframework.messaging.simp.stomp.ConnectionHandlingStompSession;
import org.springframework.messaging.simp.stomp.StompClientSupport;
import org.springframework.messaging.simp.stomp.StompHeaders;
import org.springframework.messaging.simp.stomp.StompSession;
import org.springframework.messaging.simp.stomp.StompSessionHandler;
import org.springframework.messaging.tcp.TcpOperations;
import org.springframework.util.concurrent.ListenableFuture;

final class SpringClient extends StompClientSupport {
    private final TcpOperations<byte[]> tcp;

    SpringClient(TcpOperations<byte[]> tcp) {
        this.tcp = tcp;
    }

    ListenableFuture<StompSession> connect(StompHeaders headers, StompSessionHandler handler) {
        ConnectionHandlingStompSession session = createSession(headers, handler);
        tcp.connect(session);
        return session.getSessionFuture();
    }
}
