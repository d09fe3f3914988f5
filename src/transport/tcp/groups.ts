/** The queue-group requests of a connection: LIST_GROUPS, DESCRIBE_GROUP, RESET_GROUP and REDRIVE. */
import { FerryError } from '../../errors.js';
import {
  decodeDescribeGroup,
  decodeListGroups,
  decodeRedrive,
  decodeResetGroup,
  encodeGroupInfo,
  encodeGroupList,
  encodeRedriveOk,
} from '../../protocol/codec-groups.js';
import { FRAME_TYPES, frameTypeName, type Frame } from '../../protocol/frame.js';
import type { PayloadReader } from '../../protocol/reader.js';
import type { RequestContext } from './request-context.js';

/** LIST_GROUPS, DESCRIBE_GROUP, RESET_GROUP and REDRIVE. */
export function handleGroupRequest(context: RequestContext, frame: Frame, r: PayloadReader): void {
  const { broker, writer } = context;
  const id = frame.requestId;
  switch (frame.type) {
    case FRAME_TYPES.LIST_GROUPS: {
      const topic = decodeListGroups(r);
      encodeGroupList(writer, id, supported(broker.listGroups, 'list groups').call(broker, topic));
      context.replied();
      return;
    }
    case FRAME_TYPES.DESCRIBE_GROUP: {
      const { topic, group } = decodeDescribeGroup(r);
      encodeGroupInfo(writer, id, supported(broker.describeGroup, 'describe groups').call(broker, topic, group));
      context.replied();
      return;
    }
    case FRAME_TYPES.RESET_GROUP: {
      const { topic, group, to } = decodeResetGroup(r);
      const reset = supported(broker.resetGroup, 'reset groups');
      context.run(id, reset.call(broker, topic, group, to), (info) => encodeGroupInfo(writer, id, info));
      return;
    }
    case FRAME_TYPES.REDRIVE: {
      const { topic, ...options } = decodeRedrive(r);
      const redrive = supported(broker.redrive, 'redrive dead letters');
      context.run(id, redrive.call(broker, topic, options), (ok) => encodeRedriveOk(writer, id, ok));
      return;
    }
    default:
      throw new FerryError('MALFORMED_FRAME', `${frameTypeName(frame.type)} is not a group request`);
  }
}

/** The broker method, or INVALID_ARGUMENT when this BrokerApi does not offer it (they are optional). */
function supported<F>(method: F | undefined, what: string): F {
  if (method === undefined) throw new FerryError('INVALID_ARGUMENT', `this broker cannot ${what}`);
  return method;
}
