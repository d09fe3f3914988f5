/**
 * ferry.v1.TopicService: topic administration, queue groups and redrive, each a thin call into
 * BrokerApi. Optional broker features (groups, redrive) answer INVALID_ARGUMENT when the broker
 * does not offer them, as on the TCP protocol.
 */
import type { IncomingMessage } from 'node:http';
import type { HandlerContext, ServiceImpl } from '@connectrpc/connect';
import { FerryError } from '../../errors.js';
import type { BrokerApi, RedriveOptions } from '../../broker/types.js';
import type { TopicService } from '../../generated/ferry/v1/topics_pb.js';
import { callRequest } from './call-request.js';
import { groupToProto, requireField, startPositionFromProto, toSafeNumber, topicConfigFromProto, topicToProto } from './convert.js';

export function topicService(brokerFor: (req: IncomingMessage) => BrokerApi): ServiceImpl<typeof TopicService> {
  const broker = (context: HandlerContext): BrokerApi => brokerFor(callRequest(context));
  return {
    async createTopic(request, context) {
      const name = requireField(request.name, 'name');
      return { topic: topicToProto(await broker(context).createTopic(name, topicConfigFromProto(request.config))) };
    },

    async deleteTopic(request, context) {
      await broker(context).deleteTopic(requireField(request.name, 'name'));
      return {};
    },

    listTopics(_request, context) {
      return { topics: broker(context).listTopics().map(topicToProto) };
    },

    describeTopic(request, context) {
      return { topic: topicToProto(broker(context).describeTopic(requireField(request.name, 'name'))) };
    },

    listGroups(request, context) {
      const api = broker(context);
      const topic = requireField(request.topic, 'topic');
      if (api.listGroups === undefined) throw unsupported('ListGroups');
      return { groups: api.listGroups(topic).map(groupToProto) };
    },

    describeGroup(request, context) {
      const api = broker(context);
      const topic = requireField(request.topic, 'topic');
      const group = requireField(request.group, 'group');
      if (api.describeGroup === undefined) throw unsupported('DescribeGroup');
      return { group: groupToProto(api.describeGroup(topic, group)) };
    },

    async resetGroup(request, context) {
      const api = broker(context);
      const topic = requireField(request.topic, 'topic');
      const group = requireField(request.group, 'group');
      const position = startPositionFromProto(request.position, 'position');
      if (position === undefined) throw new FerryError('INVALID_ARGUMENT', 'position is required (earliest, latest, offset or time)');
      if (api.resetGroup === undefined) throw unsupported('ResetGroup');
      return { group: groupToProto(await api.resetGroup(topic, group, position)) };
    },

    async redrive(request, context) {
      const api = broker(context);
      const deadLetterTopic = requireField(request.deadLetterTopic, 'dead_letter_topic');
      if (api.redrive === undefined) throw unsupported('Redrive');
      const options: RedriveOptions = {};
      if (request.limit !== undefined) options.limit = toSafeNumber(request.limit, 'limit');
      if (request.fromOffset !== undefined) options.fromOffset = toSafeNumber(request.fromOffset, 'from_offset');
      if (request.toOffset !== undefined) options.toOffset = toSafeNumber(request.toOffset, 'to_offset');
      if (request.header !== undefined) options.header = [requireField(request.header.name, 'header.name'), request.header.value];
      const { moved } = await api.redrive(deadLetterTopic, options);
      return { moved: BigInt(moved) };
    },
  };
}

function unsupported(method: string): FerryError {
  return new FerryError('INVALID_ARGUMENT', `this broker does not offer ${method}`);
}
