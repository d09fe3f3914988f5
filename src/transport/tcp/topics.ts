/** The topic requests of a connection: CREATE_TOPIC, DELETE_TOPIC, LIST_TOPICS, DESCRIBE_TOPIC. */
import { FerryError } from '../../errors.js';
import { decodeCreateTopic, decodeTopicName, encodeTopicInfo, encodeTopicList } from '../../protocol/codec-topics.js';
import { FRAME_TYPES, frameTypeName, type Frame } from '../../protocol/frame.js';
import type { PayloadReader } from '../../protocol/reader.js';
import type { RequestContext } from './request-context.js';

export function handleTopicRequest(context: RequestContext, frame: Frame, r: PayloadReader): void {
  const { broker, writer } = context;
  const id = frame.requestId;
  switch (frame.type) {
    case FRAME_TYPES.CREATE_TOPIC: {
      const request = decodeCreateTopic(r);
      context.run(id, broker.createTopic(request.name, request.config), (info) => encodeTopicInfo(writer, id, info));
      return;
    }
    case FRAME_TYPES.DELETE_TOPIC: {
      const name = decodeTopicName(r);
      context.run(id, broker.deleteTopic(name), () => writer.emptyFrame(FRAME_TYPES.OK, id));
      return;
    }
    case FRAME_TYPES.LIST_TOPICS:
      r.done();
      encodeTopicList(writer, id, broker.listTopics());
      context.replied();
      return;
    case FRAME_TYPES.DESCRIBE_TOPIC: {
      const name = decodeTopicName(r);
      encodeTopicInfo(writer, id, broker.describeTopic(name));
      context.replied();
      return;
    }
    default:
      throw new FerryError('MALFORMED_FRAME', `${frameTypeName(frame.type)} is not a topic request`);
  }
}
