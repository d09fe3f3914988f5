/** The wire protocol, shared by the server (src/transport/tcp) and the client (src/client). */
export * from './limits.js';
export * from './priority.js';
export * from './frame.js';
export * from '../errors.js';
export * from './messages.js';
export { FrameWriter } from './writer.js';
export { PayloadReader, malformed, type TagVisitor } from './reader.js';
export { FrameDecoder, type FrameHandler, type FrameDecoderOptions } from './decoder.js';
export * from './codec-session.js';
export * from './codec-topics.js';
export * from './codec-publish.js';
export * from './codec-subscribe.js';
export * from './codec-settle.js';
export * from './codec-groups.js';
export * from './udp-datagram.js';
