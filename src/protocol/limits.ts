/**
 * Every bound the wire protocol enforces, with the reason for its value, and the bounds and
 * defaults both peers share (names, messages per publish, headers, the port): defined here once,
 * since the client may import nothing but the protocol. The decoder rejects a frame before
 * buffering it when its declared length breaks a limit; the server announces its limits in HELLO_OK.
 */
const KiB = 1024;
const MiB = 1024 * KiB;

/** Bytes in the fixed frame header (see frame.ts for the layout). */
export const FRAME_HEADER_BYTES = 14;

/**
 * Largest frame (header + payload) a peer accepts by default. A frame must hold one maximal record
 * (storage's RECORD_BYTES_MAX is 8 MiB) with room to spare, and a decoder buffers at most one
 * frame per connection, so this also bounds a connection's read-side memory.
 */
export const FRAME_BYTES_MAX_DEFAULT = 16 * MiB;

/**
 * Largest frame a server accepts before the login is done (until it has sent HELLO_OK): a HELLO
 * with a client name, a user and password or a token and its tagged fields fits many times over
 * (a client certificate travels in TLS, not in HELLO). A client nobody has vouched for must not
 * make the server set aside the full frame limit: 24 sockets declaring 16 MiB each held 400 MiB.
 */
export const PRE_LOGIN_FRAME_BYTES_MAX = 64 * KiB;

/** Smallest frame limit a server may announce: below it HELLO_OK and ERROR frames would not fit. */
export const FRAME_BYTES_MAX_MIN = 4 * KiB;

/** Hard ceiling on any configured frame limit: the payload length field is a u32, and 1 GiB keeps one frame from monopolising a process. */
export const FRAME_BYTES_MAX_CEILING = 1024 * MiB;

/** Request ids are u32; 0 means "no reply expected" (server pushes, fire-and-forget ACK/NACK/CREDIT). */
export const REQUEST_ID_MAX = 0xffff_ffff;
export const REQUEST_ID_NONE = 0;

/** Strings prefixed by a u16 length (topic, group, header names, client name, error message). */
export const SHORT_STRING_BYTES_MAX = 0xffff;

/**
 * Topic and group names: identifiers, shown in logs and used by the broker as directory names, so
 * short and filesystem-safe. 200 bytes, so that a redrive's message id (the dead-letter topic's name
 * plus its place and a digest, broker/redrive.ts) stays within MESSAGE_ID_BYTES_MAX.
 */
export const NAME_BYTES_MAX = 200;
export const NAME_PATTERN = /^[A-Za-z0-9._-]+$/;

/**
 * Messages in one publish (one PUBLISH frame, one broker.publish call): bounds the work one request
 * can ask for; larger batches are split by the client. At most storage's APPEND_RECORDS_MAX.
 */
export const PUBLISH_MESSAGES_MAX = 100_000;

/** Entries in one ACK / NACK / CREDIT frame: bounds the work one frame can ask for. */
export const SETTLE_ENTRIES_MAX = 100_000;

/** Headers on one message: bounds decode work per message, on the wire and in the store (storage/limits.ts). */
export const HEADERS_COUNT_MAX = 64;

/** The Ferry protocol's TCP port when none is named: `ferry serve`, `broker.listen()` and clients agree on it. */
export const DEFAULT_PORT = 7700;
/** The UDP ingest port `ferry pub --udp` and publishUdp send to when none is named; the broker opens it only when configured. */
export const DEFAULT_UDP_PORT = 7701;
/** Where a server listens and a client connects when no host is named: loopback, never every interface by surprise. */
export const DEFAULT_HOST = '127.0.0.1';

/** Tagged fields in one tagged section: extensions are few; a large count is a malformed frame. */
export const TAGGED_FIELDS_MAX = 64;

/** Protocol versions this code speaks; HELLO negotiates the highest one both peers list. */
export const PROTOCOL_VERSION = 1;
export const SUPPORTED_VERSIONS: readonly number[] = [PROTOCOL_VERSION];

/** Default heartbeat period: a dead peer is noticed within a few of these without flooding idle links. */
export const HEARTBEAT_INTERVAL_MS_DEFAULT = 5000;
/** Missed heartbeat periods before a silent peer is disconnected: tolerates a GC pause or a busy loop. */
export const HEARTBEAT_MISSES_MAX_DEFAULT = 3;

/**
 * Size at which an outgoing DELIVER or PUBLISH frame that is being appended to is closed and a new
 * one started: big enough to amortise the header and the per-frame work, small enough that the
 * receiver starts on the first messages early and one frame never approaches the frame limit.
 */
export const APPEND_FRAME_BYTES_TARGET = 16 * KiB;

/** Offsets and timestamps travel as u64 but are JavaScript numbers: larger values are malformed. */
export const U64_SAFE_MAX = Number.MAX_SAFE_INTEGER;
