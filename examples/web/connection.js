// The STOMP connection of the chat page: @stomp/stompjs over WebSocket at /ws, falling back to
// SockJS (same path, Spring's layout) when WebSockets are blocked, as Spring's
// `.withSockJS()` clients do. Reconnects by itself; the page resubscribes and syncs on every
// CONNECTED (docs/protocol.md "Sync after reconnect").

import { Client } from './vendor/stompjs/index.js';

/** Failed WebSocket attempts, with no CONNECTED in between, before SockJS is tried. */
const WS_FAILURES_BEFORE_FALLBACK = 2;

/** `ws://host/ws` and `http://host/ws` of the broker that served this page. */
export function brokerUrls(location = window.location) {
  const http = `${location.protocol}//${location.host}/ws`;
  return { http, ws: http.replace(/^http/, 'ws') };
}

let sockjsLoaded;
/** sockjs-client, a plain script setting `window.SockJS`, loaded only when needed. */
function loadSockJS() {
  sockjsLoaded ??= new Promise((resolve, reject) => {
    const script = document.createElement('script');
    script.src = new URL('./vendor/sockjs.min.js', import.meta.url).href;
    script.onload = () => resolve(window.SockJS);
    script.onerror = () => reject(new Error('cannot load vendor/sockjs.min.js'));
    document.head.append(script);
  });
  return sockjsLoaded;
}

/**
 * A stompjs Client for `login`. `transport` is 'auto' (WebSocket, then SockJS if WebSockets
 * fail while /ws/info answers), 'websocket' or 'sockjs'. `onTransport(name)` says which is used.
 */
export function connect({ login, passcode, urls = brokerUrls(), transport = 'auto', onTransport, ...handlers }) {
  let mode = transport === 'sockjs' ? 'sockjs' : 'websocket';
  let failures = 0;
  const client = new Client({
    connectHeaders: passcode ? { login, passcode } : { login },
    // Presence lapses 30 s after the last sign of life; beats every 15 s keep it (and detect a
    // dead broker). The broker's grace tolerates a background tab's throttled timers.
    heartbeatIncoming: 15000,
    heartbeatOutgoing: 15000,
    // Jittered so that after a broker restart a room full of pages does not reconnect at once.
    reconnectDelay: 500 + Math.floor(Math.random() * 1000),
    debug: () => {},
    ...handlers,
  });
  const useMode = async () => {
    if (mode === 'sockjs') {
      const SockJS = await loadSockJS();
      client.webSocketFactory = () => new SockJS(urls.http);
    } else {
      client.webSocketFactory = () => new WebSocket(urls.ws, ['v12.stomp', 'v11.stomp', 'v10.stomp']);
    }
    onTransport?.(mode === 'sockjs' ? 'SockJS' : 'WebSocket');
  };
  const onConnect = client.onConnect;
  client.onConnect = (frame) => {
    failures = 0;
    onConnect(frame);
  };
  const onClose = client.onWebSocketClose;
  client.onWebSocketClose = async (event) => {
    onClose?.(event);
    if (mode !== 'websocket' || transport !== 'auto' || ++failures < WS_FAILURES_BEFORE_FALLBACK) return;
    // WebSockets keep failing: if the broker serves SockJS, switch for good (the next
    // reconnect uses the new factory). If it does not, keep trying WebSockets.
    try {
      const info = await fetch(`${urls.http}/info`, { cache: 'no-store' });
      if (info.ok) {
        mode = 'sockjs';
        await client.deactivate();
        await useMode();
        client.activate();
      }
    } catch {
      // broker unreachable: stompjs keeps retrying
    }
  };
  useMode().then(() => client.activate());
  return client;
}
