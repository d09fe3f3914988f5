/**
 * ferry.v1.TopicService: topic administration, queue groups and redrive, each a thin call into
 * BrokerApi. Optional broker features (groups, redrive) answer INVALID_ARGUMENT when the broker
 * does not offer them, as on the TCP protocol.
 */
import type { ServiceImpl } from '@connectrpc/connect';
import { FerryError } from '../../errors.js';
import type { BrokerApi, RedriveOptions } from '../../broker/types.js';
import type { TopicService } from '../../generated/ferry/v1/topics_pb.js';
import { groupToProto, requireField, startPositionFromProto, toSafeNumber, topicConfigFromProto, topicToProto } from './convert.js';

export function topicService(broker: () => BrokerApi): ServiceImpl<typeof TopicService> {
  return {
    async createTopic(request) {
      const name = requireField(request.name, 'name');
      return { topic: topicToProto(await broker().createTopic(name, topicConfigFromProto(request.config))) };
    },

    async deleteTopic(request) {
      await broker().deleteTopic(requireField(request.name, 'name'));
      return {};
    },

    listTopics() {
      return { topics: broker().listTopics().map(topicToProto) };
    },

    describeTopic(request) {
      return { topic: topicToProto(broker().describeTopic(requireField(request.name, 'name'))) };
    },

    listGroups(request) {
      const api = broker();
      const topic = requireField(request.topic, 'topic');
      if (api.listGroups === undefined) throw unsupported('ListGroups');
      return { groups: api.listGroups(topic).map(groupToProto) };
    },

    describeGroup(request) {
      const api = broker();
      const topic = requireField(request.topic, 'topic');
      const group = requireField(request.group, 'group');
      if (api.describeGroup === undefined) throw unsupported('DescribeGroup');
      return { group: groupToProto(api.describeGroup(topic, group)) };
    },

    async resetGroup(request) {
      const api = broker();
      const topic = requireField(request.topic, 'topic');
      const group = requireField(request.group, 'group');
      const position = startPositionFromProto(request.position, 'position');
      if (position === undefined) throw new FerryError('INVALID_ARGUMENT', 'position is required (earliest, latest, offset or time)');
      if (api.resetGroup === undefined) throw unsupported('ResetGroup');
      return { group: groupToProto(await api.resetGroup(topic, group, position)) };
    },

    async redrive(request) {
      const api = broker();
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
