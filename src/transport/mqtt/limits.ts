/**
 * Every bound of the MQTT port, with its reason. The configurable ones (`mqtt.*` keys,
 * docs/CONFIG.md) take their defaults and ceilings from here; the rest are fixed by the protocol.
 */

/** The port IANA assigned to MQTT; `ferry serve` opens none unless `mqtt.port` is set. */
export const MQTT_DEFAULT_PORT = 1883;

/**
 * Largest packet read by default: a Ferry record holds at most 1 MiB (storage/limits.ts), and the
 * topic, properties and header of a PUBLISH fit in the rest. Checked on the fixed header's length,
 * before the body is buffered.
 */
export const MQTT_PACKET_BYTES_MAX_DEFAULT = 1024 * 1024 + 64 * 1024;
/** Smallest configurable packet limit: a CONNECT with a client id, a user and a password. */
export const MQTT_PACKET_BYTES_MAX_MIN = 1024;
/** The protocol's own ceiling: the remaining length is a four-byte variable integer (256 MiB). */
export const MQTT_PACKET_BYTES_MAX_CEILING = 268_435_455;

/** Longest topic name or filter by default, in bytes; the protocol allows 65,535. */
export const MQTT_TOPIC_BYTES_MAX_DEFAULT = 1024;
export const MQTT_TOPIC_BYTES_MAX_CEILING = 65_535;

/** Subscriptions one client holds at most (each is one broker subscription, or one per topic for a first-level wildcard). */
export const MQTT_SUBSCRIPTIONS_MAX_DEFAULT = 100;
export const MQTT_SUBSCRIPTIONS_MAX_CEILING = 10_000;

/**
 * QoS 1 and 2 messages sent to a client and not yet acknowledged, at most (per client, over all of
 * its subscriptions); a 5.0 client's receive maximum lowers it. Also the receive maximum the
 * server announces: the QoS 1 and 2 publishes a client may have waiting for their PUBACK/PUBREC.
 */
export const MQTT_INFLIGHT_MAX_DEFAULT = 1000;
/** The protocol's ceiling: packet identifiers are 16 bits, and 0 is not one. */
export const MQTT_INFLIGHT_MAX_CEILING = 65_535;

/** A connection that has not sent CONNECT this long after it opened is closed (a slowloris, a port scan). */
export const MQTT_CONNECT_TIMEOUT_MS_DEFAULT = 10_000;
export const MQTT_CONNECT_TIMEOUT_MS_MAX = 60_000;

/** Session expiry a 5.0 client may ask for, at most (a day, in seconds); 3.1.1 persistent sessions get this. */
export const MQTT_SESSION_EXPIRY_S_MAX_DEFAULT = 24 * 3600;
export const MQTT_SESSION_EXPIRY_S_CEILING = 0xffff_ffff;

/** Open MQTT connections by default: the Ferry port's own default, so one port cannot take every file descriptor. */
export const MQTT_CONNECTIONS_MAX_DEFAULT = 10_000;

/** Where the HTTP port takes MQTT over WebSocket (the path mqtt.js and most brokers use). */
export const MQTT_WEBSOCKET_PATH = '/mqtt';

/**
 * Persistent sessions kept at most (connected or waiting to expire): each is a file and an entry
 * in memory; a new one past this is refused at CONNECT (0x97). Clean sessions are not counted.
 */
export const MQTT_STORED_SESSIONS_MAX = 100_000;

/** Keepalive is enforced at one and a half times the client's interval (MQTT-3.1.2-24). */
export const KEEPALIVE_GRACE_FACTOR = 1.5;

/** Topic aliases a 5.0 client may define (topic alias maximum announced in CONNACK). */
export const TOPIC_ALIASES_MAX = 64;
/** Topic aliases the server assigns on its PUBLISHes to one client at most (lowered by the client's topic alias maximum). */
export const OUTBOUND_TOPIC_ALIASES_MAX = 64;

/** Client identifiers longer than this are refused (0x85): they name durable groups and must stay short. */
export const CLIENT_ID_BYTES_MAX = 128;

/** The header holding a message's full MQTT topic name. */
export const MQTT_TOPIC_HEADER = 'mqtt-topic';
/** The header holding the QoS the message was published with (0, 1 or 2; absent: 1, as a native publish confirms). */
export const MQTT_QOS_HEADER = 'mqtt-qos';
/** 5.0 publish properties kept as headers, so they reach MQTT subscribers as sent. */
export const MQTT_CONTENT_TYPE_HEADER = 'mqtt-content-type';
export const MQTT_RESPONSE_TOPIC_HEADER = 'mqtt-response-topic';
/** Correlation data is binary: carried base64 in a header. */
export const MQTT_CORRELATION_DATA_HEADER = 'mqtt-correlation-data';
/** Message expiry: the wall-clock time (ms since the epoch) after which it is not delivered. */
export const MQTT_EXPIRES_AT_HEADER = 'mqtt-expires-at';
export const MQTT_PAYLOAD_FORMAT_HEADER = 'mqtt-payload-format';
/** The client id of the MQTT publisher (no-local subscriptions skip their own client's messages). */
export const MQTT_CLIENT_ID_HEADER = 'mqtt-client-id';
/** Present ('1') when the message was published with the retain flag (retain-as-published subscriptions pass it on). */
export const MQTT_RETAIN_HEADER = 'mqtt-retain';

/** Consecutive QoS 0/1 publishes to one Ferry topic stored by one broker publish, at most (inbound.ts). */
export const PUBLISH_BATCH_MESSAGES_MAX = 1_000;
/** Payload bytes of such a batch, at most. */
export const PUBLISH_BATCH_BYTES_MAX = 1024 * 1024;
