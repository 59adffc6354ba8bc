// TypeScript declarations of fastcomm.js, the fastcomm browser client.

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

export declare const SUBPROTOCOLS: Readonly<{ json: "fastcomm.v1.json"; msgpack: "fastcomm.v1.msgpack" }>;
export declare const NO_RETRY_CODES: ReadonlySet<number>;
export declare const RATE_LIMITED_PAUSE: number;
export declare const ABNORMAL: 1006;

/** The server answered a request with an `error` reply. */
export declare class RequestFailed extends Error {
  constructor(code: string, message: string, details?: unknown);
  readonly code: string;
  /** The server's `message`, without the code prefix. */
  readonly serverMessage: string;
  readonly details: unknown;
}

/** The connection or the client is gone; `code` is the close code (1006 when none came). */
export declare class ConnectionClosed extends Error {
  constructor(code: number, reason?: string);
  readonly code: number;
  readonly reason: string;
}

export declare class TimeoutError extends Error {}

export declare function backoffDelay(
  attempt: number,
  initial?: number,
  maximum?: number,
  rand?: () => number,
): number;

export declare class Backoff {
  constructor(initial?: number, maximum?: number, maxAttempts?: number | null, rand?: () => number);
  readonly initial: number;
  readonly maximum: number;
  readonly maxAttempts: number | null;
  attempts: number;
  /** Seconds before the next attempt, counting it; null once maxAttempts were used. */
  nextDelay(): number | null;
  reset(): void;
}

export declare function shouldReconnect(code: number): boolean;

export declare class Emitter<Events extends object = Record<string, unknown>> {
  /** Add a listener; returns the function that removes it. */
  on<K extends keyof Events & string>(name: K, listener: (detail: Events[K]) => void): () => void;
  off<K extends keyof Events & string>(name: K, listener: (detail: Events[K]) => void): void;
}

export interface Publication<T = unknown> {
  channel: string;
  offset: number;
  epoch: string;
  data: T;
}

export interface PresenceEvent {
  channel: string;
  session: string;
  user: string | null;
}

export interface Member {
  session: string;
  user: string | null;
  meta: unknown;
}

/** Publications after previousEpoch:previousOffset up to epoch:offset may be lost: resync. */
export interface RecoveryEvent {
  recovered: false;
  channel: string;
  epoch: string;
  offset: number;
  previousEpoch: string | null;
  previousOffset: number;
}

export interface SubscriptionEvents {
  publication: Publication;
  join: PresenceEvent;
  leave: PresenceEvent;
  recovery: RecoveryEvent;
  closed: { channel: string; reason: string };
}

/** The pure stream state of one channel (dedupe, gaps, hold/release, history fill). */
export declare class ChannelState {
  constructor(
    channel: string,
    options?: {
      recover?: boolean;
      onPublication?: (pub: Publication) => void;
      onLost?: (event: RecoveryEvent) => void;
    },
  );
  channel: string;
  recover: boolean;
  epoch: string | null;
  offset: number;
  recovered: boolean;
  duplicates: number;
  held: Publication[] | null;
  /** Deliver or drop `pub`; returns the end of a gap to fill, else null. */
  deliver(pub: Publication): number | null;
  hold(): Publication[];
  release(): number | null;
  reset(): void;
  apply(reply: { epoch: string; offset: number; recovered: boolean }): void;
  fill(page: { epoch: string; messages: Publication[] } | null, upto: number): number | null;
}

export interface RequestOptions {
  /** Seconds; null waits forever; default: the client's callTimeout. */
  timeout?: number | null;
}

export declare class Subscription extends Emitter<SubscriptionEvents> {
  readonly client: Client;
  readonly channel: string;
  readonly closed: boolean;
  /** Epoch and offset of the last publication delivered (the top at subscribe time at first). */
  readonly epoch: string | null;
  readonly offset: number;
  readonly recovered: boolean;
  readonly duplicates: number;
  presence(options?: RequestOptions): Promise<Member[]>;
  history(
    options?: { since?: number | null; limit?: number | null } & RequestOptions,
  ): Promise<{ epoch: string; messages: Publication[] }>;
  publish(data: unknown, options?: RequestOptions): Promise<number>;
  unsubscribe(options?: RequestOptions): Promise<void>;
}

/**
 * The server's `welcome`. When the client resumed with its first message (it sends
 * `{type: "resume", token}` rather than putting the token in the URL), `session`,
 * `resume_token` and `resumed` are those of the server's `resumed` reply.
 */
export interface Welcome {
  type: "welcome";
  session: string;
  resume_token: string;
  resumed: boolean;
  heartbeat: number;
  max_message_size: number;
  protocol: string;
}

export type ClientState = "idle" | "connecting" | "open" | "reconnecting" | "closed";

export interface ClientEvents {
  connecting: Record<string, never>;
  open: { resumed: boolean; reconnects: number };
  reconnecting: { code: number; attempt: number; delay: number };
  closed: { code: number; reason: string };
  state: { state: ClientState } & Record<string, unknown>;
  push: { type: string } & Record<string, unknown>;
  error: { type: "error"; id: null; code: string; message: string; details: unknown };
}

export interface ClientOptions {
  /** Sent as the `token` query parameter; a function is called before every attempt. */
  token?: string | null | (() => string | null | Promise<string | null>);
  subprotocol?: "json" | "msgpack";
  reconnect?: boolean;
  /** Seconds. */
  backoffInitial?: number;
  /** Seconds. */
  backoffMax?: number;
  /** Attempts per outage; null: no bound. */
  maxAttempts?: number | null;
  /** Default request timeout in seconds (null: none). Default 10. */
  callTimeout?: number | null;
  /** Seconds to wait for the `welcome` (and the `resumed` reply) of one attempt. Default 10. */
  connectTimeout?: number;
  /** Seconds of silence beyond the server's heartbeat before the connection is given up. Default 5. */
  heartbeatMargin?: number;
  /** Resume the session of this resume token on the first connection (sent in the first message). */
  resume?: string | null;
  /** A WebSocket constructor to use instead of globalThis.WebSocket. */
  WebSocket?: typeof WebSocket;
}

/** Request type -> its message and its result, e.g. the `Calls` that
 * `fastcomm schema APP --format typescript` generates: `Client<Calls>` checks each
 * `call` by its `type` field and types its result. */
export type CallMap = { [type: string]: { request: { type: string }; result: unknown } };

/** A client without a `CallMap`: any message, an `unknown` result. */
export type AnyCalls = { [type: string]: { request: { type: string } & Record<string, unknown>; result: unknown } };

export declare class Client<C extends CallMap = AnyCalls> extends Emitter<ClientEvents> {
  static connect<C extends CallMap = AnyCalls>(url: string, options?: ClientOptions): Promise<Client<C>>;
  constructor(url: string, options?: ClientOptions);
  url: string;
  token: ClientOptions["token"];
  readonly subprotocol: "json" | "msgpack";
  reconnect: boolean;
  readonly backoff: Backoff;
  callTimeout: number | null;
  readonly state: ClientState;
  readonly welcome: Welcome | null;
  readonly reconnects: number;
  readonly connected: boolean;
  readonly closed: boolean;
  readonly session: string | null;
  readonly resumeToken: string | null;
  readonly subscriptions: Map<string, Subscription>;
  /** Open the first connection; rejects with ConnectionClosed (not retried). */
  open(): Promise<Welcome>;
  request<R = Record<string, unknown>>(msg: { type: string } & Record<string, unknown>, options?: RequestOptions): Promise<R>;
  call<K extends keyof C & string>(msg: { type: K } & C[K]["request"], options?: RequestOptions): Promise<C[K]["result"]>;
  send(msg: { type: string } & Record<string, unknown>): void;
  /** Subscribe; after a subscribe of `channel` timed out, first waits (within the timeout) for its undoing. */
  subscribe(channel: string, options?: { recover?: boolean } & RequestOptions): Promise<Subscription>;
  publish(channel: string, data: unknown, options?: RequestOptions): Promise<number>;
  presence(channel: string, options?: RequestOptions): Promise<Member[]>;
  close(code?: number, reason?: string): Promise<void>;
}
