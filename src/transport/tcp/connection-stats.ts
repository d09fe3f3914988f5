/** What a TCP connection reports about itself: its state and statistics (connection.ts, the admin API). */
export type ConnectionState = 'handshake' | 'authenticating' | 'open' | 'draining' | 'closed';

export interface ConnectionStats {
  id: number;
  clientName: string;
  remoteAddress: string;
  remotePort: number;
  connectedAtMs: number;
  state: ConnectionState;
  /** The authenticated user (null: authentication is off, or not yet done). */
  user: string | null;
  tls: boolean;
  bytesIn: number;
  bytesOut: number;
  framesIn: number;
  framesOut: number;
  inFlightRequests: number;
  /** Turns this connection waited out for refusing too many of its requests at once (abuse throttle). */
  throttledTurns: number;
  subscriptions: Array<{ id: number; topic: string; group: string | undefined; delivered: number }>;
}
